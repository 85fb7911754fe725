export * from './errors.js';
export * from './ids.js';
export * from './secrets.js';
export * from './passwords.js';
export * from './clock.js';
