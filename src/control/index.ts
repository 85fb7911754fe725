export { buildControlApp, type AdminApiModule, type ControlAppOptions, type ControlModule } from './app.js';
export {
  type ControlApp,
  type ControlDeps,
  actorOf,
  changeDeps,
  errorResponses,
  Id,
  ListOf,
  PageOf,
  Pagination,
} from './context.js';
export { sendError } from './errors.js';
