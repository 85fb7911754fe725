/**
 * The only reader of `process.env`. Every setting is declared once below (name, variable, default, meaning);
 * `loadConfig` parses them all, reports every problem at once, and returns a frozen `Config`.
 * The README's configuration table is this list.
 */

import { parseIpRange } from '../kernel/ip-ranges.js';

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

/** Comma-separated IPs and CIDR ranges, each checked by the one parser (`kernel/ip-ranges.ts`); frozen. */
const cidrList: Parser<readonly string[]> = (raw) => {
  const entries = raw
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e !== '');
  const bad = entries.filter((e) => parseIpRange(e) === null);
  if (bad.length > 0)
    throw new Error(`expected IP addresses or CIDR ranges, got ${bad.map((e) => `"${e}"`).join(', ')}`);
  return Object.freeze(entries);
};

/** Comma-separated host names, IPv4 addresses or [IPv6] addresses, each optionally with `:port`; frozen. */
const hostList: Parser<readonly string[]> = (raw) => {
  const entries = raw
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e !== '');
  const bad = entries.filter((e) => !/^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(:\d{1,5})?$/.test(e));
  if (bad.length > 0)
    throw new Error(`expected host or host:port, got ${bad.map((e) => `"${e}"`).join(', ')}`);
  return Object.freeze(entries);
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
  databaseQueryTimeoutMs: setting(
    'TRELLIS_DATABASE_QUERY_TIMEOUT_MS',
    10_000,
    integer(0, 3_600_000),
    'PostgreSQL: how long one query may wait for its answer, in milliseconds, before it fails and its connection is closed; bounds how long a hanging database (frozen, network cut) holds a request (the management API, portal and console then answer 503 `database_unavailable`). 0: no limit (for a migration that rewrites a large table, say).',
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
    'Gateway processes to run on this host (`trellis start --workers N`); without Redis the first process holds their counters.',
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
    250,
    integer(50, 60_000),
    'How often the gateway flushes aggregated usage to the database (one row appended to the usage journal), in milliseconds; a kill -9 loses at most the calls of about one interval.',
  ),
  usageCompactMs: setting(
    'TRELLIS_USAGE_COMPACT_MS',
    5000,
    integer(50, 300_000),
    "How often a gateway moves the usage journal into the usage tables (charts, analytics, insights, keys' last use, the counts limits start from after a restart), in milliseconds: how far behind the calls those may be. A graceful stop compacts; a gateway compacts what a killed one left when it starts.",
  ),
  usageFlushThread: setting(
    'TRELLIS_USAGE_FLUSH_THREAD',
    true,
    boolean,
    "Whether a gateway on a SQLite file writes its usage flushes on a worker thread with a connection of its own, so that a flush never holds requests (better-sqlite3 is synchronous); PostgreSQL's flushes are asynchronous anyway.",
  ),
  insightsRecording: setting(
    'TRELLIS_INSIGHTS_RECORDING',
    true,
    boolean,
    'Whether gateways sum calls per route, status class and latency bucket and count call patterns (reads after creates, calls before Retry-After) for insights, written with the usage flush.',
  ),
  insightsFlushMs: setting(
    'TRELLIS_INSIGHTS_FLUSH_MS',
    5000,
    integer(50, 300_000),
    "How often the gateway writes its insights sums (calls per route, status class and latency bucket; call patterns) with a usage flush, in milliseconds. They are statistics, not billing: written less often than usage, since each application's latency histogram is several rows a minute; a kill -9 loses at most about one interval of them, a graceful stop nothing. Never more often than `TRELLIS_USAGE_FLUSH_MS`.",
  ),
  insightsIntervalMs: setting(
    'TRELLIS_INSIGHTS_INTERVAL_MS',
    60_000,
    integer(0, 86_400_000),
    'How often the worker role runs the insight detectors and quota alerts over the flushed usage (one worker a round, however many share the database), in milliseconds; 0 turns them off.',
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
  credentialMaxAgeMs: setting(
    'TRELLIS_GATEWAY_CREDENTIAL_MAX_AGE_MS',
    60_000,
    integer(1000, 3_600_000),
    'How long a gateway trusts a cached credential without news from the change feed before looking it up again (served meanwhile, and while the database is away), in milliseconds.',
  ),
  gatewayBufferedBodyBytes: setting(
    'TRELLIS_GATEWAY_BUFFERED_BODY_BYTES',
    65_536,
    integer(0, 16 * 1_048_576),
    'Request bodies with a declared length up to this many bytes are read whole before the gateway takes an upstream connection, so a slow client holds none; larger ones are streamed.',
  ),
  gatewayBodyIdleTimeoutMs: setting(
    'TRELLIS_GATEWAY_BODY_IDLE_TIMEOUT_MS',
    10_000,
    integer(100, 600_000),
    'A request body that sends no byte for this many milliseconds is refused with 408 `request_timeout`.',
  ),
  gatewayUploadsPerApplication: setting(
    'TRELLIS_GATEWAY_UPLOADS_PER_APPLICATION',
    32,
    integer(1, 100_000),
    'Streamed (larger or chunked) uploads one application may have in flight per gateway process; beyond, 429 `too_many_uploads`.',
  ),
  gatewayUpstreamQueueTimeoutMs: setting(
    'TRELLIS_GATEWAY_UPSTREAM_QUEUE_TIMEOUT_MS',
    5000,
    integer(1, 600_000),
    'How long a call waits for a connection of a full upstream pool before 503 `upstream_busy`, in milliseconds.',
  ),
  trustedProxies: setting(
    'TRELLIS_TRUSTED_PROXIES',
    Object.freeze([] as string[]),
    cidrList,
    'Load balancers and proxies whose `X-Forwarded-For` is believed (comma-separated IPs or CIDRs, IPv4 and IPv6), for the gateway, the portal and the console; empty: the socket address is the client.',
  ),
  outboundAllowHosts: setting(
    'TRELLIS_OUTBOUND_ALLOW_HOSTS',
    Object.freeze([] as string[]),
    hostList,
    'Hosts (`name` or `name:port`, comma-separated) Trellis may fetch from although they resolve to loopback, private or link-local addresses (e.g. an identity provider on your network); every other outbound fetch (external JWKS) must reach a public address.',
  ),
  certificationEvidenceMaxBytes: setting(
    'TRELLIS_CERTIFICATION_EVIDENCE_MAX_BYTES',
    2_097_152,
    integer(1024, 20 * 1_048_576),
    'Largest image a partner may upload as certification evidence (PNG, JPEG, WebP or GIF), in bytes; larger ones are refused with 413.',
  ),
  webhookDisableAfterDays: setting(
    'TRELLIS_WEBHOOK_DISABLE_AFTER_DAYS',
    5,
    integer(1, 365),
    'A webhook endpoint whose every attempt failed for this many days is disabled, with the event `webhook_endpoint.disabled` and a mail to its owner.',
  ),
  workerMetricsPort: setting(
    'TRELLIS_WORKER_METRICS_PORT',
    0,
    integer(0, 65535),
    "Port on which the worker role (`trellis worker`, or the one `trellis start` runs) serves its Prometheus metrics at `/metrics`: webhook queue depth and age, attempts by outcome, delivery latency; 0 serves none (`trellis start` with one gateway process also adds them to the gateway's `/__trellis/metrics`).",
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
      `| \`${s.env}\` | ${String(s.default) === '' ? '(empty)' : `\`${String(s.default)}\``} | ${s.description} |`,
  );
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
