/** The logging a module needs (warnings, errors, and what recovers); pino's logger, what the CLI passes, satisfies it. */
export interface Logger {
  info(data: object, message?: string): void;
  warn(data: object, message?: string): void;
  error(data: object, message?: string): void;
}

/** Turns an error into loggable fields: its message and code, without the stack. */
export function errorFields(err: unknown): { err: { message: string; code?: string } } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { err: typeof code === 'string' ? { message: err.message, code } : { message: err.message } };
  }
  return { err: { message: String(err) } };
}
