/** The logging the gateway needs; pino's logger (what the CLI passes) satisfies it. */
export interface GatewayLogger {
  info(data: object, message?: string): void;
  warn(data: object, message?: string): void;
  error(data: object, message?: string): void;
}

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

/** Turns an error into loggable fields. */
export function errorFields(err: unknown): { err: { message: string; code?: string } } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { err: typeof code === 'string' ? { message: err.message, code } : { message: err.message } };
  }
  return { err: { message: String(err) } };
}
