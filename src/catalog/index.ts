export * from './schemas.js';
export * from './catalog.js';
export { importOpenapi, operationsOf, type ImportResult } from './openapi-import.js';
export { type ApplyStep, DeclarativeConfig, exportCatalog, planApply, runApply } from './declarative.js';
