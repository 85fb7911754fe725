/**
 * Credentials are looked up by hash when first presented and cached, so a store with a million keys needs no
 * full load and a hot key costs no database work. Unknown keys are cached too (negative caching), so a client
 * retrying a bad key does not reach the database each time. The change feed evicts entries (see change-feed.ts).
 * As a second line, nothing is trusted for ever: an entry older than `maxAgeMs` is looked up again (served as it
 * is meanwhile, and for as long as the database cannot answer), and an unknown key is forgotten after `maxAgeMs`.
 * A credential created a moment ago must work on the very next call, before the change feed says so: an unknown
 * key, or a key the cached application does not have, is looked up again before it is refused — at most once per
 * `recheckMs` for the same key, so a client retrying a bad key costs one lookup per `recheckMs` at most, and calls
 * with known keys never wait for the database.
 */
import { type Clock, hashSecret, systemClock } from '../kernel/index.js';
import { type IpAllowlist, compileAllowlist } from './ip-allowlist.js';
import { type ApplicationRow, findApplicationByAppId, findUserKey } from './snapshot.store.js';
import { type Executor, withDatabaseTimeout } from '../store/index.js';

/** What the gateway knows of an application when it authenticates a call. */
export interface AppAccess {
  readonly applicationId: string;
  readonly accountId: string;
  readonly serviceId: string;
  readonly planId: string;
  /** pending | live | suspended */
  readonly state: string;
  /** pending | approved | suspended */
  readonly accountState: string;
  readonly environment: 'sandbox' | 'production';
  readonly appId: string;
  /** `null` allows every address. */
  readonly allowlist: IpAllowlist | null;
}

export interface UserKeyEntry {
  readonly app: AppAccess;
  /** active | revoked */
  readonly credentialState: string;
}

export interface AppIdEntry {
  readonly app: AppAccess;
  /** App key hashes and their states (active | revoked). */
  readonly keys: ReadonlyMap<string, string>;
}

/** Where cache misses are answered from (the database; tests may pass another). */
export interface CredentialSource {
  findUserKey(secretHash: string): Promise<UserKeyEntry | undefined>;
  findAppId(appId: string): Promise<AppIdEntry | undefined>;
}

function toAccess(row: ApplicationRow): AppAccess {
  let ips: string[] = [];
  try {
    const parsed: unknown = JSON.parse(row.allowed_ips);
    if (Array.isArray(parsed)) ips = parsed.filter((x): x is string => typeof x === 'string');
  } catch {
    // a malformed list allows nothing rather than everything
    ips = ['invalid'];
  }
  return {
    applicationId: row.application_id,
    accountId: row.account_id,
    serviceId: row.service_id,
    planId: row.plan_id,
    state: row.app_state,
    accountState: row.account_state,
    environment: row.environment === 'sandbox' ? 'sandbox' : 'production',
    appId: row.app_id,
    allowlist: compileAllowlist(ips),
  };
}

/** The database as a credential source. */
export function databaseCredentialSource(db: Executor): CredentialSource {
  return {
    async findUserKey(secretHash) {
      const row = await findUserKey(db, secretHash);
      return row && { app: toAccess(row), credentialState: row.credential_state };
    },
    async findAppId(appId) {
      const found = await findApplicationByAppId(db, appId);
      return (
        found && {
          app: toAccess(found.application),
          keys: new Map(found.keys.map((k) => [k.secret_hash, k.state])),
        }
      );
    },
  };
}

type Entry = UserKeyEntry | AppIdEntry;

export interface CredentialCacheOptions {
  source: CredentialSource;
  /** Known credentials kept. Default 200,000 (roughly 100 MB at most). */
  capacity?: number;
  /** Unknown credentials remembered. Default 20,000. */
  negativeCapacity?: number;
  /** Recently presented keys whose SHA-256 is remembered. Default 10,000. */
  hashCapacity?: number;
  /**
   * How long an entry is trusted without the change feed saying anything: older ones are re-validated on their
   * next use (stale-while-revalidate), unknown keys forgotten. Default 60 s.
   */
  maxAgeMs?: number;
  /**
   * How often the same unknown key (or the same key an application's cached keys lack) may be looked up again
   * before it is refused: a key created since it was cached works at once. Default 1 s.
   */
  recheckMs?: number;
  /**
   * How long a lookup may take before it fails as the database being unavailable (the gateway then answers 503);
   * a hung database must not hang the requests that need it. Default 3 s.
   */
  lookupTimeoutMs?: number;
  clock?: Clock;
}

/** A cached entry and when it is to be looked up again. */
interface Slot {
  readonly entry: Entry;
  staleAt: number;
  refreshing: boolean;
  /** When it was (re)inserted, counted in insertions: its place in the recency order. */
  placed: number;
}

/** How soon a re-validation that failed (the database away) is tried again; the entry is served meanwhile. */
const RETRY_REVALIDATION_MS = 5000;

/** A presented key's stored form, and its user-key entry's name in the cache (built once, not per call). */
export interface PresentedKey {
  readonly hash: string;
  readonly cacheKey: string;
}

/** Keys longer than this are hashed every time rather than remembered (real keys are ~36 characters). */
const MAX_REMEMBERED_KEY_LENGTH = 128;

export interface CredentialCacheStats {
  size: number;
  negativeSize: number;
  hits: number;
  misses: number;
}

/**
 * An LRU of credentials (`u:<hash>` user keys, `a:<app_id>` applications) with indexes by application and
 * account for eviction. A lookup that started before an eviction is returned but not cached, so a revoke that
 * lands while the database is being read is not undone by the late answer.
 */
export class CredentialCache {
  private readonly source: CredentialSource;
  private readonly capacity: number;
  private readonly negativeCapacity: number;
  private readonly entries = new Map<string, Slot>();
  /** Unknown key → when it is forgotten. */
  private readonly negative = new Map<string, number>();
  private readonly maxAgeMs: number;
  private readonly lookupTimeoutMs: number;
  private readonly clock: Clock;
  private readonly byApplication = new Map<string, Set<string>>();
  private readonly byAccount = new Map<string, Set<string>>();
  private readonly inFlight = new Map<string, Promise<Entry | null>>();
  /** Presented key → its SHA-256 (a pure function of the key, so nothing here can go stale on a revoke). */
  private readonly hashes = new Map<string, PresentedKey>();
  private readonly hashCapacity: number;
  /** Unknown key (`u:<hash>`, `a:<app_id>`, `a:<app_id> <key hash>`) → when it was last looked up again. */
  private readonly rechecked = new Map<string, number>();
  private readonly recheckMs: number;
  private generation = 0;
  /** Insertions into `entries` so far (recency order). */
  private placements = 0;
  private hits = 0;
  private misses = 0;

  constructor(options: CredentialCacheOptions) {
    this.source = options.source;
    this.capacity = options.capacity ?? 200_000;
    this.negativeCapacity = options.negativeCapacity ?? 20_000;
    this.hashCapacity = options.hashCapacity ?? 10_000;
    this.maxAgeMs = options.maxAgeMs ?? 60_000;
    this.lookupTimeoutMs = options.lookupTimeoutMs ?? 3000;
    this.recheckMs = options.recheckMs ?? 1000;
    this.clock = options.clock ?? systemClock;
  }

  /** Whether an unknown key may be looked up again now (and notes that it is). */
  private mayRecheck(name: string): boolean {
    const now = this.clock.now();
    const last = this.rechecked.get(name);
    if (last !== undefined && now - last < this.recheckMs) return false;
    this.rechecked.delete(name);
    this.rechecked.set(name, now);
    if (this.rechecked.size > this.negativeCapacity) {
      const oldest = this.rechecked.keys().next().value;
      if (oldest !== undefined) this.rechecked.delete(oldest);
    }
    return true;
  }

  /**
   * The stored form (SHA-256, as `hashSecret`) of a presented key, remembered for recently seen keys so a hot key
   * is not hashed on every call. Only the hash is remembered here; what the key grants is still looked up by
   * hash below, so revocations and evictions apply exactly as before. Oldest first out when full.
   */
  hashOf(secret: string): string {
    return this.presented(secret).hash;
  }

  /**
   * A presented key's hash and cache name together, for a caller that needs both (authenticate: the hash for
   * "last used", then the entry) with one lookup of the key instead of two.
   */
  presented(secret: string): PresentedKey {
    let known = this.hashes.get(secret);
    if (known !== undefined) return known;
    const hash = hashSecret(secret);
    known = { hash, cacheKey: `u:${hash}` };
    if (secret.length <= MAX_REMEMBERED_KEY_LENGTH) {
      if (this.hashes.size >= this.hashCapacity) {
        const oldest = this.hashes.keys().next().value;
        if (oldest !== undefined) this.hashes.delete(oldest);
      }
      this.hashes.set(secret, known);
    }
    return known;
  }

  /** A user key as presented (or its `presented` form): the entry, `null` when unknown, or a promise of either on a miss. */
  userKeyOf(secret: string | PresentedKey): UserKeyEntry | null | Promise<UserKeyEntry | null> {
    const { hash, cacheKey } = typeof secret === 'string' ? this.presented(secret) : secret;
    return this.get(cacheKey, 'user_key', hash) as UserKeyEntry | null | Promise<UserKeyEntry | null>;
  }

  /** A user key by hash: the entry, `null` when unknown, or a promise of either on a miss. */
  userKey(secretHash: string): UserKeyEntry | null | Promise<UserKeyEntry | null> {
    return this.get(`u:${secretHash}`, 'user_key', secretHash) as
      | UserKeyEntry
      | null
      | Promise<UserKeyEntry | null>;
  }

  /** An application by public app id. */
  appId(appId: string): AppIdEntry | null | Promise<AppIdEntry | null> {
    return this.get(`a:${appId}`, 'app_id', appId) as AppIdEntry | null | Promise<AppIdEntry | null>;
  }

  /**
   * An application by public app id, for a call presenting the app key whose hash is `keyHash`: when the cached
   * application does not have that key (added a moment ago?), it is looked up again (bounded by `recheckMs`).
   */
  appIdWithKey(appId: string, keyHash: string): AppIdEntry | null | Promise<AppIdEntry | null> {
    const key = `a:${appId}`;
    const found = this.get(key, 'app_id', appId) as AppIdEntry | null | Promise<AppIdEntry | null>;
    if (found === null || found instanceof Promise || found.keys.has(keyHash)) return found;
    if (!this.mayRecheck(`${key} ${keyHash}`)) return found;
    return this.lookUpAgain(key, 'app_id', appId, found) as Promise<AppIdEntry | null>;
  }

  /**
   * Looks a key up again now and caches the answer (unless an eviction happened meanwhile). When the database
   * cannot answer, the cached answer stands.
   */
  private lookUpAgain(
    key: string,
    kind: 'user_key' | 'app_id',
    arg: string,
    cached: Entry | null,
  ): Promise<Entry | null> {
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    this.misses++;
    const generation = this.generation;
    const load: Promise<Entry | undefined> = this.lookup(kind, arg);
    const promise = load.then(
      (entry) => {
        this.inFlight.delete(key);
        if (generation === this.generation) {
          this.remove(key);
          this.negative.delete(key);
          this.store(key, entry ?? null);
        }
        return entry ?? null;
      },
      () => {
        this.inFlight.delete(key);
        return cached;
      },
    );
    this.inFlight.set(key, promise);
    return promise;
  }

  /** One lookup in the source, failing as the database being unavailable when it takes too long. */
  private lookup(kind: 'user_key' | 'app_id', arg: string): Promise<Entry | undefined> {
    const load = kind === 'user_key' ? this.source.findUserKey(arg) : this.source.findAppId(arg);
    return withDatabaseTimeout<Entry | undefined>(load, this.lookupTimeoutMs);
  }

  /** `key` is `u:<hash>` (kind user_key, `arg` the hash) or `a:<app_id>` (kind app_id, `arg` the app id). */
  private get(key: string, kind: 'user_key' | 'app_id', arg: string): Entry | null | Promise<Entry | null> {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      // refresh recency: a Map iterates in insertion order, so re-inserting makes it the newest. Only once it has
      // fallen into the older half: an entry among the newest `capacity / 2` cannot be the oldest of more than
      // `capacity`, so it is not next out, and a hot key costs no delete and insert on every call
      if (this.placements - hit.placed >= this.capacity >> 1) {
        this.entries.delete(key);
        this.entries.set(key, hit);
        hit.placed = ++this.placements;
      }
      this.hits++;
      if (!hit.refreshing && this.clock.now() >= hit.staleAt) this.revalidate(key, kind, arg, hit);
      return hit.entry;
    }
    const forgetAt = this.negative.get(key);
    if (forgetAt !== undefined) {
      if (this.clock.now() < forgetAt) {
        // unknown a moment ago; created since? looked up again, at most once per `recheckMs`
        if (!this.mayRecheck(key)) {
          this.hits++;
          return null;
        }
        return this.lookUpAgain(key, kind, arg, null);
      }
      this.negative.delete(key);
    }
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    this.misses++;
    const generation = this.generation;
    const load: Promise<Entry | undefined> = this.lookup(kind, arg);
    const promise = load.then(
      (entry) => {
        this.inFlight.delete(key);
        if (generation === this.generation) this.store(key, entry ?? null);
        return entry ?? null;
      },
      (err: unknown) => {
        this.inFlight.delete(key);
        throw err;
      },
    );
    this.inFlight.set(key, promise);
    return promise;
  }

  /**
   * Looks a stale entry up again while it goes on being served. The answer replaces the entry only if it is still
   * the one in the cache: an entry evicted meanwhile (a revoke, a suspension) is never brought back. When the
   * database cannot answer, the entry is served as it is and tried again a little later.
   */
  private revalidate(key: string, kind: 'user_key' | 'app_id', arg: string, slot: Slot): void {
    slot.refreshing = true;
    const load: Promise<Entry | undefined> = this.lookup(kind, arg);
    load.then(
      (entry) => {
        slot.refreshing = false;
        if (this.entries.get(key) !== slot) return;
        this.remove(key);
        this.store(key, entry ?? null);
      },
      () => {
        slot.refreshing = false;
        slot.staleAt = this.clock.now() + Math.min(RETRY_REVALIDATION_MS, this.maxAgeMs);
      },
    );
  }

  private store(key: string, entry: Entry | null): void {
    if (entry === null) {
      this.negative.delete(key);
      this.negative.set(key, this.clock.now() + this.maxAgeMs);
      // just looked up: the next lookup of this unknown key waits `recheckMs`
      this.rechecked.delete(key);
      this.rechecked.set(key, this.clock.now());
      if (this.negative.size > this.negativeCapacity) {
        const oldest = this.negative.keys().next().value;
        if (oldest !== undefined) this.negative.delete(oldest);
      }
      return;
    }
    this.entries.set(key, {
      entry,
      staleAt: this.clock.now() + this.maxAgeMs,
      refreshing: false,
      placed: ++this.placements,
    });
    index(this.byApplication, entry.app.applicationId, key);
    index(this.byAccount, entry.app.accountId, key);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.remove(oldest);
    }
  }

  private remove(key: string): void {
    const entry = this.entries.get(key)?.entry;
    if (!entry) return;
    this.entries.delete(key);
    unindex(this.byApplication, entry.app.applicationId, key);
    unindex(this.byAccount, entry.app.accountId, key);
  }

  /** Forgets an application's credentials (its state, plan, keys or IPs changed). */
  evictApplication(applicationId: string): void {
    this.generation++;
    for (const key of [...(this.byApplication.get(applicationId) ?? [])]) this.remove(key);
  }

  /** Forgets the credentials of every application of an account. */
  evictAccount(accountId: string): void {
    this.generation++;
    for (const key of [...(this.byAccount.get(accountId) ?? [])]) this.remove(key);
  }

  /** Forgets unknown credentials: a new key or application may now match one of them. */
  clearNegative(): void {
    this.generation++;
    this.negative.clear();
  }

  /** Forgets everything (when a change cannot be attributed). */
  clear(): void {
    this.generation++;
    this.entries.clear();
    this.negative.clear();
    this.byApplication.clear();
    this.byAccount.clear();
    this.hashes.clear();
  }

  stats(): CredentialCacheStats {
    return {
      size: this.entries.size,
      negativeSize: this.negative.size,
      hits: this.hits,
      misses: this.misses,
    };
  }
}

function index(map: Map<string, Set<string>>, id: string, key: string): void {
  const set = map.get(id);
  if (set) set.add(key);
  else map.set(id, new Set([key]));
}

function unindex(map: Map<string, Set<string>>, id: string, key: string): void {
  const set = map.get(id);
  if (!set) return;
  set.delete(key);
  if (set.size === 0) map.delete(id);
}
