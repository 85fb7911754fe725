import type { Config } from '../config/index.js';
import { type Store, type StoreLogger, migrateToLatest, openStore } from '../store/index.js';
import { CliError, exitCodes } from './cli-error.js';

/**
 * Opens the configured database and checks it answers; an unreachable one is a clear error, not a stack trace.
 * Connections lost later are reported to `logger` (default: JSON lines on stderr).
 */
export async function connectStore(config: Config, logger?: StoreLogger): Promise<Store> {
  const store = openStore(config.databaseUrl, {
    queryTimeoutMs: config.databaseQueryTimeoutMs,
    ...(logger && { logger }),
  });
  try {
    await store.db.selectNoFrom((eb) => eb.val(1).as('one')).execute();
  } catch (err) {
    await store.destroy().catch(() => {});
    const e = err as { code?: string; message?: string };
    throw new CliError(
      exitCodes.database,
      `Cannot reach the database ${redact(config.databaseUrl)}: ${e.code ? `${e.code} ` : ''}${e.message ?? String(err)}`,
    );
  }
  return store;
}

/** Brings the schema up to date; a failed migration leaves the database as it was. */
export async function migrate(store: Store): Promise<string[]> {
  try {
    return await migrateToLatest(store.db);
  } catch (err) {
    throw new CliError(exitCodes.database, (err as Error).message);
  }
}

/** A database URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]+@/, '//$1:***@');
}
