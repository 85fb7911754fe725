/**
 * The `trellis` command. Only this folder starts servers and handles signals.
 * Exit codes: 0 ok, 1 failure, 2 bad flags, 3 bad input file, 4 database unreachable or migration failed,
 * 5 invalid configuration.
 */
import { writeFile } from 'node:fs/promises';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { stringify } from 'yaml';
import { createAdminToken } from '../access/index.js';
import { type ApplyStep, applyDeclarative, exportCatalog, planApply } from '../catalog/index.js';
import { type Config, ConfigError, loadConfig } from '../config/index.js';
import type { Actor } from '../events/index.js';
import { systemClock } from '../kernel/index.js';
import { isDatabaseUnavailable } from '../store/index.js';
import { CliError, exitCodes } from './cli-error.js';
import { readDeclarativeFile } from './config-file.js';
import { connectStore, migrate, redact } from './connect.js';
import { composeWorkerRole, createProcessLogger } from './roles.js';
import { describeStart, startTrellis } from './start.js';

const cliActor: Actor = { type: 'system', id: 'cli' };

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError('expected a port number 0…65535');
  return n;
}

function positive(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 64) throw new InvalidArgumentError('expected a whole number 1…64');
  return n;
}

/** Settings from the environment, with flags taking precedence. */
function configFrom(flags: Partial<Config>): Config {
  try {
    return loadConfig(process.env, flags);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(exitCodes.config, err.message);
    throw err;
  }
}

/** A failed apply as one line: it ran in one transaction, so nothing was changed (unless the commit was cut off). */
function applyFailure(err: unknown): CliError {
  const message = err instanceof Error ? err.message : String(err);
  if (isDatabaseUnavailable(err))
    return new CliError(
      exitCodes.database,
      `The database was lost during the apply (${message}); run it again: it applies whatever is still missing.`,
    );
  return new CliError(exitCodes.failure, `The apply failed and nothing was changed: ${message}`);
}

const databaseOption = () => new Option('--database-url <url>', 'database (overrides TRELLIS_DATABASE_URL)');

export function buildProgram(
  out: (text: string) => void = (t) => process.stdout.write(t),
  err: (text: string) => void = (t) => process.stderr.write(t),
): Command {
  const program = new Command('trellis')
    .description('Trellis: open-source API management')
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: err });

  program
    .command('start')
    .description(
      'run the gateway and the control server (portal, console, management API) on embedded defaults',
    )
    .addOption(databaseOption())
    .option('--gateway-port <port>', 'gateway port (TRELLIS_GATEWAY_PORT)', port)
    .option('--control-port <port>', 'control server port (TRELLIS_CONTROL_PORT)', port)
    .option('--workers <n>', 'gateway processes on this host (TRELLIS_GATEWAY_WORKERS)', positive)
    .option('--no-demo', 'do not create the demo on an empty database')
    .action(
      async (opts: {
        databaseUrl?: string;
        gatewayPort?: number;
        controlPort?: number;
        workers?: number;
        demo: boolean;
      }) => {
        const config = configFrom({
          databaseUrl: opts.databaseUrl,
          gatewayPort: opts.gatewayPort,
          controlPort: opts.controlPort,
          gatewayWorkers: opts.workers,
          ...(opts.demo === false && { demo: false }),
        });
        const running = await startTrellis(config);
        out(describeStart(running));
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            out('Stopping: finishing requests in flight and flushing usage…\n');
            running.stop().then(resolve, (e: unknown) => {
              err(`Error while stopping: ${(e as Error).message}\n`);
              resolve();
            });
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
      },
    );

  program
    .command('worker')
    .description(
      'run the worker role: deliver webhooks from the outbox and run the insights once a round (any number on PostgreSQL, one on SQLite; `start` runs one in-process)',
    )
    .addOption(databaseOption())
    .action(async (opts: { databaseUrl?: string }) => {
      const config = configFrom({ databaseUrl: opts.databaseUrl });
      const logger = createProcessLogger(config, 'worker');
      const store = await connectStore(config, logger);
      try {
        await migrate(store);
        const role = await composeWorkerRole({ config, store, logger });
        role.start();
        out(
          `Webhook worker ${role.worker.workerId} is running on ${redact(config.databaseUrl)}. Stop with Ctrl-C.\n`,
        );
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            out('Stopping: finishing the deliveries in flight…\n');
            role.close().then(resolve, (e: unknown) => {
              err(`Error while stopping: ${(e as Error).message}\n`);
              resolve();
            });
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
      } finally {
        await store.destroy();
      }
    });

  program
    .command('migrate')
    .description('bring the database schema up to date (also done by start)')
    .addOption(databaseOption())
    .action(async (opts: { databaseUrl?: string }) => {
      const store = await connectStore(configFrom({ databaseUrl: opts.databaseUrl }));
      try {
        const applied = await migrate(store);
        out(applied.length ? `Applied ${applied.join(', ')}\n` : 'The database is up to date.\n');
      } finally {
        await store.destroy();
      }
    });

  program
    .command('apply')
    .description('make services, metrics, methods, mapping rules and plans match a YAML file (idempotent)')
    .requiredOption('-f, --file <path>', 'the declarative configuration (YAML or JSON)')
    .option('--dry-run', 'print what would change, change nothing')
    .option('--prune', 'also delete services, metrics, methods and plans the file does not list')
    .addOption(databaseOption())
    .action(async (opts: { file: string; dryRun?: boolean; prune?: boolean; databaseUrl?: string }) => {
      const doc = await readDeclarativeFile(opts.file);
      const store = await connectStore(configFrom({ databaseUrl: opts.databaseUrl }));
      const sign = { create: '+', update: '~', delete: '-' } as const;
      const print = (steps: ApplyStep[]) => {
        for (const s of steps)
          out(`${sign[s.op]} ${s.op} ${s.what}${s.fields ? ` (${s.fields.join(', ')})` : ''}\n`);
        if (steps.length === 0) out('No changes: the database matches the file.\n');
      };
      try {
        await migrate(store);
        const prune = opts.prune ?? false;
        if (opts.dryRun) {
          const steps = await planApply(store.db, doc, { prune });
          print(steps);
          if (steps.length > 0) out(`Dry run: ${steps.length} change(s) not applied.\n`);
          return;
        }
        // one transaction, in turn with any other apply: worked out and run together, all or nothing
        const steps = await applyDeclarative({ db: store.db, clock: systemClock }, cliActor, doc, {
          prune,
          onPlanned: print,
        }).catch((err: unknown) => {
          throw applyFailure(err);
        });
        if (steps.length > 0) out(`Applied ${steps.length} change(s).\n`);
      } finally {
        await store.destroy();
      }
    });

  program
    .command('export')
    .description('print the catalog (services, metrics, methods, mapping rules, plans) as YAML for apply')
    .option('-o, --output <path>', 'write to a file instead of standard output')
    .addOption(databaseOption())
    .action(async (opts: { output?: string; databaseUrl?: string }) => {
      const store = await connectStore(configFrom({ databaseUrl: opts.databaseUrl }));
      try {
        await migrate(store);
        const yaml = stringify(await exportCatalog(store.db));
        if (opts.output) await writeFile(opts.output, yaml);
        else out(yaml);
      } finally {
        await store.destroy();
      }
    });

  const adminToken = program.command('admin-token').description('manage admin API tokens');
  adminToken
    .command('create')
    .description('create an admin API token and print it (shown once)')
    .requiredOption('--name <name>', 'what the token is for')
    .addOption(
      new Option('--scope <scope>', 'read or read_write')
        .choices(['read', 'read_write'])
        .default('read_write'),
    )
    .addOption(databaseOption())
    .action(async (opts: { name: string; scope: 'read' | 'read_write'; databaseUrl?: string }) => {
      const store = await connectStore(configFrom({ databaseUrl: opts.databaseUrl }));
      try {
        await migrate(store);
        const token = await createAdminToken({ db: store.db, clock: systemClock }, cliActor, {
          name: opts.name,
          scope: opts.scope,
        });
        out(`${token.token}\n`);
      } finally {
        await store.destroy();
      }
    });

  return program;
}

/** Where a run of the command writes: standard output and error by default; tests capture them. */
export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

const standardOutput: CliOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Runs the command line and returns the exit code. */
export async function run(argv: string[], io: CliOutput = standardOutput): Promise<number> {
  const program = buildProgram(io.out, io.err);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCodes.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
    }
    if (err instanceof CliError) {
      io.err(`trellis: ${err.message}\n`);
      return err.exitCode;
    }
    io.err(`trellis: ${(err as Error).stack ?? String(err)}\n`);
    return exitCodes.failure;
  }
}

// Run when executed as the program (not when imported by tests).
const invoked = process.argv[1] ?? '';
if (/[/\\]cli[/\\]main\.[jt]s$/.test(invoked)) {
  run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
