/**
 * How changes made through the management API reach the gateway: the outbox (`events`) is the truth, read with
 * `readChangesSince` every `snapshotRefreshMs`; when Redis is configured, control publishes on
 * {@link CHANGES_CHANNEL} after each commit and the gateway reads the outbox at once. The notification carries no
 * data, so a lost message only delays a change to the next poll, and nothing a gateway acts on bypasses the database.
 */
import type { Redis } from 'ioredis';
import { type ChangeFeedEntry, readChangesSince } from '../events/index.js';
import { type Executor, withDatabaseTimeout } from '../store/index.js';
import { type GatewayLogger, errorFields } from './logger.js';

export const CHANGES_CHANNEL = 'trellis:changes';

/** Entities compiled into the snapshot: a change to any of them rebuilds it. */
const catalogEntities = new Set([
  'service',
  'metric',
  'method',
  'mapping_rule',
  'plan',
  'plan_limit',
  'plan_disabled_metric',
  'plan_feature',
]);

/** Entities the gateway never looks at. Anything not listed here or handled below flushes the credential cache. */
const ignoredEntities = new Set([
  'user',
  'invitation',
  'admin_user',
  'admin_token',
  'custom_field',
  'setting',
  'settings',
  'webhook',
  'webhook_delivery',
  'portal',
  'audit',
  // token signing keys are the token verifier's concern, not the credential cache's
  'oauth_signing_key',
  'oauth_token',
  'oauth_service',
  'oauth_client',
  // a certification plan matters to a run only through the copy a run takes (runs are `application` events)
  'certification_plan',
]);

/** What a batch of changes asks of the gateway. */
export interface ChangeActions {
  reloadSnapshot: boolean;
  flushAll: boolean;
  clearNegative: boolean;
  applications: Set<string>;
  accounts: Set<string>;
}

function stringField(payload: Record<string, unknown>, name: string): string | null {
  const v = payload[name];
  return typeof v === 'string' && v !== '' ? v : null;
}

/** Decides what a batch of outbox entries means for the snapshot and the credential cache. */
export function classifyChanges(entries: readonly ChangeFeedEntry[]): ChangeActions {
  const actions: ChangeActions = {
    reloadSnapshot: false,
    flushAll: false,
    clearNegative: false,
    applications: new Set(),
    accounts: new Set(),
  };
  for (const e of entries) {
    const entity = e.entityType;
    if (catalogEntities.has(entity)) {
      actions.reloadSnapshot = true;
    } else if (entity === 'application') {
      actions.applications.add(e.entityId);
      // a new application or a new app_id may match an id remembered as unknown
      actions.clearNegative = true;
    } else if (entity === 'credential') {
      const applicationId = stringField(e.payload, 'applicationId');
      if (applicationId) actions.applications.add(applicationId);
      else actions.flushAll = true;
      actions.clearNegative = true;
    } else if (entity === 'account') {
      actions.accounts.add(e.entityId);
    } else if (!ignoredEntities.has(entity)) {
      actions.flushAll = true;
    }
  }
  return actions;
}

export interface ChangeFeedOptions {
  db: Executor;
  /** The outbox position the snapshot was loaded at. */
  afterSeq: number;
  intervalMs: number;
  logger: GatewayLogger;
  /** Applies a batch; a rejection leaves the position unchanged, so the batch is read again. */
  apply(actions: ChangeActions, entries: readonly ChangeFeedEntry[]): Promise<void>;
  /** A dedicated Redis connection to subscribe on (subscribed connections can do nothing else). */
  subscriber?: Redis;
  /**
   * How long one read or one apply may take before the run counts as failed (retried at the next poll), so a
   * hung database cannot stall the feed for good. Default 10 s.
   */
  timeoutMs?: number;
}

/** Follows the outbox. */
export class ChangeFeed {
  private seq: number;
  private readonly timer: NodeJS.Timeout;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private failing = false;

  constructor(private readonly options: ChangeFeedOptions) {
    this.seq = options.afterSeq;
    this.timer = setInterval(() => void this.poll(), options.intervalMs);
    this.timer.unref();
    const sub = options.subscriber;
    if (sub) {
      sub.on('message', () => void this.poll());
      sub.subscribe(CHANGES_CHANNEL).catch((err: unknown) => {
        options.logger.warn(
          errorFields(err),
          'gateway: cannot subscribe to change notifications; polling only',
        );
      });
    }
  }

  /** The outbox position applied so far. */
  get position(): number {
    return this.seq;
  }

  /** Reads and applies what is new; concurrent calls coalesce into one more run. */
  poll(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.drain().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async drain(): Promise<void> {
    do {
      this.again = false;
      try {
        for (;;) {
          const timeoutMs = this.options.timeoutMs ?? 10_000;
          const entries = await withDatabaseTimeout(
            readChangesSince(this.options.db, this.seq, 1000),
            timeoutMs,
          );
          if (entries.length === 0) break;
          await withDatabaseTimeout(this.options.apply(classifyChanges(entries), entries), timeoutMs);
          this.seq = entries[entries.length - 1]!.seq;
          if (entries.length < 1000) break;
        }
        if (this.failing) this.options.logger.info({}, 'gateway: change feed readable again');
        this.failing = false;
      } catch (err) {
        // keep serving from the current snapshot; the next poll retries
        if (!this.failing)
          this.options.logger.error(errorFields(err), 'gateway: cannot read the change feed');
        this.failing = true;
        return;
      }
    } while (this.again && !this.closed);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
    if (this.options.subscriber) await this.options.subscriber.quit().catch(() => {});
  }
}

/**
 * Tells every gateway to read the change feed now. Control calls it after committing a change; without it
 * gateways still see the change at their next poll.
 * @example await publishChange(redis)
 */
export async function publishChange(redis: Redis): Promise<void> {
  await redis.publish(CHANGES_CHANNEL, '1');
}
