export * from './schemas.js';
export * from './accounts.js';
export * from './applications.js';
export * from './custom-fields.js';
export * from './admins.js';
export * from './settings.js';
export { signupExpress } from './signup.js';
export {
  type ApplicationFilter,
  deleteSettingRow,
  findSettingRow,
  upsertSettingRow,
} from './access.store.js';
