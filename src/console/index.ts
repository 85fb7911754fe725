/** The admin console (`/admin`): the provider runs its API program here. */
export { consoleModule, type ConsoleOptions } from './console-module.js';
