export * from './schemas.js';
export * from './catalog.js';
export {
  importOpenapi,
  operationsOf,
  publishOpenapi,
  versionOf,
  type ImportResult,
  type PublishResult,
  type SkippedOperation,
} from './openapi-import.js';
export {
  type ApplyStep,
  applyDeclarative,
  DeclarativeConfig,
  type DocumentProblem,
  exportCatalog,
  planApply,
  repeatedRules,
  runApply,
} from './declarative.js';
