/** Exit codes of the `trellis` command: stable, so scripts can tell failures apart. */
export const exitCodes = {
  ok: 0,
  failure: 1,
  usage: 2,
  badInput: 3,
  database: 4,
  config: 5,
} as const;

/** A failure the CLI reports as one clear line and an exit code. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
