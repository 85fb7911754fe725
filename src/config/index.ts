/**
 * The only reader of `process.env`. Every setting is declared once below (name, variable, default, meaning);
 * `loadConfig` parses them all, reports every problem at once, and returns a frozen `Config`.
 * The README's configuration table is this list.
 */

type Parser<T> = (raw: string) => T;

interface Setting<T> {
  env: string;
  default: T;
  description: string;
  parse: Parser<T>;
}

function integer(min: number, max: number): Parser<number> {
  return (raw) => {
    if (!/^-?\d+$/.test(raw)) throw new Error(`expected a whole number, got "${raw}"`);
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`expected ${min}…${max}, got ${n}`);
    return n;
  };
}

const text: Parser<string> = (raw) => raw;

const boolean: Parser<boolean> = (raw) => {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new Error(`expected true or false, got "${raw}"`);
};

function oneOf<T extends string>(...values: T[]): Parser<T> {
  return (raw) => {
    if ((values as string[]).includes(raw)) return raw as T;
    throw new Error(`expected one of ${values.join(', ')}, got "${raw}"`);
  };
}

const databaseUrl: Parser<string> = (raw) => {
  if (/^(sqlite:|postgres:\/\/|postgresql:\/\/)/.test(raw)) return raw;
  throw new Error(`expected sqlite:<file> or postgres://…, got "${raw}"`);
};

const optionalUrl: Parser<string> = (raw) => {
  if (raw === '') return '';
  try {
    new URL(raw);
    return raw;
  } catch {
    throw new Error(`expected a URL, got "${raw}"`);
  }
};

function setting<T>(env: string, def: T, parse: Parser<T>, description: string): Setting<T> {
  return { env, default: def, parse, description };
}

/** Every setting of Trellis. */
export const settings = {
  databaseUrl: setting(
    'TRELLIS_DATABASE_URL',
    'sqlite:./data/trellis.db',
    databaseUrl,
    'Where state lives: `sqlite:<file>` (embedded, `sqlite::memory:` for a throwaway) or `postgres://user@host/db`.',
  ),
  redisUrl: setting(
    'TRELLIS_REDIS_URL',
    '',
    optionalUrl,
    'Redis for shared limit counters and change notifications; empty keeps counters in memory (one process).',
  ),
  host: setting('TRELLIS_HOST', '127.0.0.1', text, 'Address the gateway and control servers bind to.'),
  gatewayPort: setting('TRELLIS_GATEWAY_PORT', 8080, integer(0, 65535), 'Port of the gateway (data plane).'),
  controlPort: setting(
    'TRELLIS_CONTROL_PORT',
    3000,
    integer(0, 65535),
    'Port of the control server: management API, console, portal, OAuth.',
  ),
  publicUrl: setting(
    'TRELLIS_PUBLIC_URL',
    '',
    optionalUrl,
    'Public base URL of the control server (links in mails, OAuth issuer). Default: http://localhost:<controlPort>.',
  ),
  gatewayPublicUrl: setting(
    'TRELLIS_GATEWAY_PUBLIC_URL',
    '',
    optionalUrl,
    'Public base URL of the gateway, shown to developers. Default: http://localhost:<gatewayPort>.',
  ),
  gatewayWorkers: setting(
    'TRELLIS_GATEWAY_WORKERS',
    1,
    integer(1, 64),
    'Gateway processes to run on this host (`trellis start --workers N`).',
  ),
  demo: setting(
    'TRELLIS_DEMO',
    true,
    boolean,
    'On an empty database, create a demo API, plans, a developer account and an application.',
  ),
  demoUpstreamPort: setting(
    'TRELLIS_DEMO_UPSTREAM_PORT',
    8081,
    integer(0, 65535),
    'Port of the small built-in upstream API the demo service points at.',
  ),
  adminEmail: setting(
    'TRELLIS_ADMIN_EMAIL',
    'admin@localhost',
    text,
    'E-mail of the first admin user, created on an empty database.',
  ),
  adminPassword: setting(
    'TRELLIS_ADMIN_PASSWORD',
    '',
    text,
    'Password of the first admin user; empty generates one and prints it once.',
  ),
  bodyLimit: setting(
    'TRELLIS_CONTROL_BODY_LIMIT',
    1_048_576,
    integer(1024, 100 * 1_048_576),
    'Largest request body the control server accepts, in bytes.',
  ),
  logLevel: setting(
    'TRELLIS_LOG_LEVEL',
    'info' as 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent',
    oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
    'Log level (logs are JSON lines on stdout).',
  ),
  smtpUrl: setting(
    'TRELLIS_SMTP_URL',
    '',
    optionalUrl,
    'SMTP server for mails (`smtp://user:pass@host:587`); empty keeps mails in an outbox the console shows.',
  ),
  usageFlushMs: setting(
    'TRELLIS_USAGE_FLUSH_MS',
    1000,
    integer(50, 60_000),
    'How often the gateway flushes aggregated usage to the database, in milliseconds.',
  ),
  oauthKeySecret: setting(
    'TRELLIS_OAUTH_KEY_SECRET',
    '',
    text,
    'Secret that encrypts the OAuth signing keys and login secrets at rest (AES-256-GCM); empty stores them unencrypted.',
  ),
  snapshotRefreshMs: setting(
    'TRELLIS_SNAPSHOT_POLL_MS',
    500,
    integer(50, 60_000),
    'How often a gateway without Redis notifications checks the database for configuration changes.',
  ),
} as const;

type Settings = typeof settings;
export type Config = { readonly [K in keyof Settings]: Settings[K]['default'] };

/** Raised when settings are invalid; lists every problem. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses settings from an environment record (normally `process.env`), with `overrides` taking precedence
 * (what CLI flags say).
 * @example const config = loadConfig(process.env, { gatewayPort: 0 })
 */
export function loadConfig(env: Record<string, string | undefined>, overrides: Partial<Config> = {}): Config {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(settings) as [string, Setting<unknown>][]) {
    if (name in overrides && (overrides as Record<string, unknown>)[name] !== undefined) {
      out[name] = (overrides as Record<string, unknown>)[name];
      continue;
    }
    const raw = env[s.env];
    if (raw === undefined || raw === '') {
      out[name] = s.default;
      continue;
    }
    try {
      out[name] = s.parse(raw.trim());
    } catch (err) {
      problems.push(`${s.env}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const config = out as Config;
  return Object.freeze({
    ...config,
    publicUrl: config.publicUrl || `http://localhost:${config.controlPort}`,
    gatewayPublicUrl: config.gatewayPublicUrl || `http://localhost:${config.gatewayPort}`,
  });
}

/** The configuration table of the README, generated from `settings`. */
export function settingsTable(): string {
  const rows = Object.entries(settings).map(
    ([, s]) =>
      `| \`${s.env}\` | ${s.default === '' ? '(empty)' : `\`${String(s.default)}\``} | ${s.description} |`,
  );
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
