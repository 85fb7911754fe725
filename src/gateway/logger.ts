import type { Logger } from '../kernel/index.js';

export { errorFields } from '../kernel/index.js';

/** The logging the gateway needs; pino's logger (what the CLI passes) satisfies it. */
export type GatewayLogger = Logger;

/** JSON lines on stderr for warnings and errors: used when no logger is passed, so failures are never silent. */
export function createFallbackLogger(): GatewayLogger {
  const write = (level: string, data: object, message?: string) =>
    process.stderr.write(`${JSON.stringify({ level, time: Date.now(), msg: message, ...data })}\n`);
  return {
    info: () => {},
    warn: (data, message) => write('warn', data, message),
    error: (data, message) => write('error', data, message),
  };
}
