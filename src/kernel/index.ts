export * from './errors.js';
export * from './ids.js';
export * from './secrets.js';
export * from './passwords.js';
export * from './clock.js';
export * from './ip-ranges.js';
export * from './client-address.js';
export * from './yaml.js';
