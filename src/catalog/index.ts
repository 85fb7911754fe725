export * from './schemas.js';
export * from './catalog.js';
export { importOpenapi, operationsOf, type ImportResult } from './openapi-import.js';
