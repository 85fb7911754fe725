/**
 * The one HTTP client for everything Trellis fetches on someone's behalf (external JWKS now, webhooks next).
 * Whoever can set the URL must not be able to make Trellis reach its own network (SSRF, OWASP A10:2021):
 *
 * - Only http and https.
 * - The address is checked where the connection is made: a custom `lookup` resolves the name and refuses
 *   loopback, private, link-local, CGNAT, multicast, reserved and metadata addresses (address-policy.ts). The
 *   socket connects to exactly the address that was checked, so a name that resolves differently the second
 *   time (DNS rebinding) gains nothing. IP-literal URLs never reach `lookup` and are checked before connecting.
 * - Hosts named in `allowHosts` (TRELLIS_OUTBOUND_ALLOW_HOSTS: `host` or `host:port`) skip the address check
 *   (an identity provider on the provider's own network), and nothing else does.
 * - Redirects are not followed: a 3xx is an error (a redirect to http://169.254.169.254/ would otherwise undo
 *   every check above).
 * - Bounded: connect timeout, total timeout (headers and body), and a maximum response size.
 *
 * Failures are `OutboundError`s with stable codes.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { Agent, type Dispatcher, request } from 'undici';
import { isIpLiteral, refusedRangeOf } from './address-policy.js';

export type OutboundErrorCode =
  | 'outbound_url_invalid'
  | 'outbound_scheme_refused'
  | 'outbound_address_refused'
  | 'outbound_redirect_refused'
  | 'outbound_too_large'
  | 'outbound_timeout'
  | 'outbound_status'
  | 'outbound_failed';

/** A refused or failed outbound request; `code` is stable, `message` names the URL's host and the reason. */
export class OutboundError extends Error {
  constructor(
    readonly code: OutboundErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'OutboundError';
  }
}

/** Resolves a host name to every address it has (dns.lookup with `all: true` by default; tests inject one). */
export type HostResolver = (hostname: string) => Promise<readonly LookupAddress[]>;

export interface OutboundClientOptions {
  /** Host names (or `host:port`) that may be fetched whatever they resolve to. Default: none. */
  allowHosts?: readonly string[];
  /** Milliseconds to establish the connection (TCP and TLS). Default 3000. */
  connectTimeoutMs?: number;
  /** Milliseconds for the whole exchange, body included. Default 5000. */
  timeoutMs?: number;
  /** Largest response body accepted, in bytes. Default 1 MiB. */
  maxBytes?: number;
  /** How host names are resolved. Default: the system resolver. */
  resolve?: HostResolver;
}

export interface OutboundRequest {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

export interface OutboundResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface OutboundClient {
  /**
   * Checks a URL without fetching it: scheme, and the address when the host is an IP literal (names are
   * checked when they are resolved, at connect time). Null when it may be fetched.
   */
  checkUrl(url: string): OutboundError | null;
  /** Sends a request; any answer but a redirect is returned, whatever its status. */
  request(url: string, init?: OutboundRequest): Promise<OutboundResponse>;
  /** GETs a JSON document; a status other than 2xx, or a body that is not JSON, is an `OutboundError`. */
  fetchJson(url: string): Promise<unknown>;
  close(): Promise<void>;
}

const systemResolver: HostResolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A `lookup` for net.connect that refuses names resolving to a refused address (any of them). */
function guardedLookup(resolve: HostResolver) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    resolve(hostname).then(
      (found) => {
        const addresses = found.filter(
          (a) => options.family === undefined || options.family === 0 || a.family === options.family,
        );
        if (addresses.length === 0) {
          callback(new OutboundError('outbound_failed', `${hostname} has no address`), '');
          return;
        }
        for (const a of addresses) {
          const range = refusedRangeOf(a.address);
          if (range !== null) {
            const refusal = new OutboundError(
              'outbound_address_refused',
              `${hostname} resolves to ${a.address}, a ${range} address Trellis does not fetch from`,
            );
            callback(refusal, '');
            return;
          }
        }
        if (options.all) callback(null, [...addresses]);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, ''),
    );
  };
}

/** The OutboundError somewhere in an error's cause chain (undici wraps socket errors). */
function outboundErrorIn(err: unknown): OutboundError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof OutboundError) return e;
  }
  return undefined;
}

function isTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    (err instanceof Error && err.name === 'TimeoutError')
  );
}

function parseUrl(raw: string): URL | OutboundError {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return new OutboundError('outbound_url_invalid', 'not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return new OutboundError(
      'outbound_scheme_refused',
      `${url.protocol} URLs are not fetched (http or https only)`,
    );
  }
  return url;
}

/** Whether a URL's host is on the allow-list, by name (or address) or by name and port. */
function isAllowedHost(url: URL, allowHosts: ReadonlySet<string>): boolean {
  const host = url.hostname.toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return allowHosts.has(host) || allowHosts.has(`${host}:${port}`);
}

function normaliseAllowHosts(allowHosts: readonly string[] | undefined): ReadonlySet<string> {
  return new Set((allowHosts ?? []).map((h) => h.trim().toLowerCase()).filter(Boolean));
}

function checkParsed(url: URL, allowHosts: ReadonlySet<string>): OutboundError | null {
  if (isAllowedHost(url, allowHosts) || !isIpLiteral(url.hostname)) return null;
  const range = refusedRangeOf(url.hostname);
  return range === null
    ? null
    : new OutboundError(
        'outbound_address_refused',
        `${url.hostname} is a ${range} address Trellis does not fetch from`,
      );
}

/**
 * Checks a URL someone registers (a JWKS URL, a webhook endpoint) without fetching it: http(s) only, and an IP
 * literal must not be a refused address unless allowed. Names are checked when they are resolved, at connect
 * time. Null when it may be fetched.
 * @example checkOutboundUrl('http://169.254.169.254/', config.outboundAllowHosts)?.code // 'outbound_address_refused'
 */
export function checkOutboundUrl(raw: string, allowHosts: readonly string[] = []): OutboundError | null {
  const url = parseUrl(raw);
  return url instanceof OutboundError ? url : checkParsed(url, normaliseAllowHosts(allowHosts));
}

/**
 * Builds the guarded client.
 * @example const outbound = createOutboundClient({ allowHosts: config.outboundAllowHosts }); await outbound.fetchJson(jwksUrl)
 */
export function createOutboundClient(options: OutboundClientOptions = {}): OutboundClient {
  const allowHosts = normaliseAllowHosts(options.allowHosts);
  const connectTimeoutMs = options.connectTimeoutMs ?? 3000;
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxBytes = options.maxBytes ?? 1_048_576;
  const resolve = options.resolve ?? systemResolver;
  const common = { headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connections: 16 };
  const guarded = new Agent({
    ...common,
    connect: { timeout: connectTimeoutMs, lookup: guardedLookup(resolve) },
  });
  // allowed hosts are still resolved by the injected resolver (so tests stay off the real DNS), unchecked
  const open = new Agent({
    ...common,
    connect: {
      timeout: connectTimeoutMs,
      lookup: (hostname: string, lookupOptions: LookupOptions, callback: LookupCallback) => {
        resolve(hostname).then(
          (found) =>
            lookupOptions.all
              ? callback(null, [...found])
              : found[0]
                ? callback(null, found[0].address, found[0].family)
                : callback(new OutboundError('outbound_failed', `${hostname} has no address`), ''),
          (err: NodeJS.ErrnoException) => callback(err, ''),
        );
      },
    },
  });

  const isAllowed = (url: URL) => isAllowedHost(url, allowHosts);
  const check = (url: URL) => checkParsed(url, allowHosts);

  async function send(raw: string, init: OutboundRequest = {}): Promise<OutboundResponse> {
    const url = parseUrl(raw);
    if (url instanceof OutboundError) throw url;
    const refused = check(url);
    if (refused) throw refused;
    const dispatcher: Dispatcher = isAllowed(url) ? open : guarded;
    const signal = AbortSignal.timeout(timeoutMs);
    const label = `${url.protocol}//${url.host}`;
    try {
      const res = await request(url, {
        dispatcher,
        method: init.method ?? 'GET',
        ...(init.headers && { headers: init.headers }),
        ...(init.body !== undefined && { body: init.body }),
        signal,
      });
      // once given up on (redirect, too large), the destroyed body reports an abort that nobody awaits
      res.body.on('error', () => {});
      if (res.statusCode >= 300 && res.statusCode < 400) {
        res.body.destroy();
        throw new OutboundError(
          'outbound_redirect_refused',
          `${label} answered ${res.statusCode}; redirects are not followed`,
        );
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.body.destroy();
        throw new OutboundError('outbound_too_large', `${label} answers more than ${maxBytes} bytes`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > maxBytes) {
          res.body.destroy();
          throw new OutboundError('outbound_too_large', `${label} answers more than ${maxBytes} bytes`);
        }
        chunks.push(buf);
      }
      return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
    } catch (err) {
      const known = outboundErrorIn(err);
      if (known) throw known;
      if (signal.aborted || isTimeout(err)) {
        throw new OutboundError('outbound_timeout', `${label} did not answer within ${timeoutMs} ms`, {
          cause: err,
        });
      }
      throw new OutboundError('outbound_failed', `${label}: ${(err as Error).message}`, { cause: err });
    }
  }

  return {
    checkUrl(raw) {
      const url = parseUrl(raw);
      return url instanceof OutboundError ? url : check(url);
    },
    request: send,
    async fetchJson(raw) {
      const res = await send(raw, { headers: { accept: 'application/json' } });
      if (res.status < 200 || res.status >= 300) {
        throw new OutboundError('outbound_status', `${new URL(raw).host} answered ${res.status}`);
      }
      try {
        return JSON.parse(res.body.toString('utf8')) as unknown;
      } catch (err) {
        throw new OutboundError('outbound_failed', `${new URL(raw).host} did not answer JSON`, {
          cause: err,
        });
      }
    },
    async close() {
      await Promise.all([guarded.close(), open.close()]);
    },
  };
}
