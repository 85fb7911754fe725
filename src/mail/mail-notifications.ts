/**
 * The mails a partner expects when the provider decides about their account or application (issue 13): account
 * approved, application approved, moved to another plan, plan request declined, go-live approved or rejected,
 * production revoked. Each is written from its template (`mail-templates.ts`) to the
 * account's admins — the people who may act on the application, as for the quota alerts.
 *
 * They follow the changes the domain operations record, handed over once committed (`ChangeDeps.onCommitted`),
 * so every path to a decision sends them — the management API, the console, the portal (a plan applied at once),
 * the go-live auto-approval of a passed certification — and `access` and `golive` need not know mail exists (the
 * mail context reads them, not the other way round). Like the signup and invitation mails, a mail is written to
 * the outbox right after its change committed; a change that committed nothing a partner needs to hear (a plan
 * "changed" to the plan it was on) sends nothing.
 */
import { type Application, getAccount, getApplication, listUsers } from '../access/index.js';
import { getPlan, getService } from '../catalog/index.js';
import type { Change } from '../events/index.js';
import { TrellisError } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import type { Mailer } from './mailer.js';
import type { MailTemplateKey } from './schemas.js';

export interface MailNotifierDeps {
  db: Executor;
  /** Writes the mails (its `portalUrl` fills `{{portalUrl}}` and the links). */
  mailer: Mailer;
  /** The portal's address, for the links to an application's pages. */
  portalUrl: string;
  /** A mail that could not be written (the change is committed whatever happens here). */
  onError: (err: unknown) => void;
}

export interface MailNotifier {
  /** Hands committed changes over; their mails are written after, in order (`settled` waits for them). */
  notify(changes: readonly Change[]): void;
  /** Resolves when every mail of the changes handed over so far is in the outbox (tests, shutdown). */
  settled(): Promise<void>;
}

interface PlannedMail {
  key: MailTemplateKey;
  accountId: string;
  values: Record<string, string>;
}

/**
 * @example const notifier = createMailNotifier({ db, mailer, portalUrl, onError: (err) => log.error({ err }) })
 *          const cd: ChangeDeps = { db, clock, onCommitted: (changes) => notifier.notify(changes) }
 */
export function createMailNotifier(deps: MailNotifierDeps): MailNotifier {
  let chain: Promise<void> = Promise.resolve();
  return {
    notify(changes) {
      if (!changes.some((c) => c.type in plannersByType)) return;
      chain = chain.then(async () => {
        for (const change of changes) {
          try {
            await mailChange(deps, change);
          } catch (err) {
            deps.onError(err);
          }
        }
      });
    },
    settled: () => chain,
  };
}

async function mailChange(deps: MailNotifierDeps, change: Change): Promise<void> {
  const plan = plannersByType[change.type];
  const mail = plan ? await plan(deps, change) : null;
  if (!mail) return;
  const admins = (await listUsers(deps.db, mail.accountId)).filter((u) => u.role === 'admin');
  for (const admin of admins) await deps.mailer.sendTemplate(mail.key, admin.email, mail.values);
}

type Planner = (deps: MailNotifierDeps, change: Change) => Promise<PlannedMail | null>;

const plannersByType: Record<string, Planner> = {
  'account.approved': async (deps, change) => {
    const account = await current(getAccount(deps.db, change.entityId));
    if (!account) return null;
    return {
      key: 'account_approved',
      accountId: account.id,
      values: { accountName: account.name, appsUrl: `${deps.portalUrl}/apps` },
    };
  },
  'application.approved': async (deps, change) => {
    const app = await current(getApplication(deps.db, change.entityId));
    if (!app) return null;
    return {
      key: 'application_approved',
      accountId: app.accountId,
      values: { ...(await applicationValues(deps, app)), planName: await planName(deps.db, app.planId) },
    };
  },
  'application.plan_changed': async (deps, change) => {
    const from = textAt(change.payload, 'fromPlanId');
    const to = textAt(change.payload, 'toPlanId');
    if (from === null || to === null || from === to) return null;
    const app = await current(getApplication(deps.db, change.entityId));
    if (!app) return null;
    return {
      key: 'plan_changed',
      accountId: app.accountId,
      values: {
        ...(await applicationValues(deps, app)),
        previousPlanName: await planName(deps.db, from),
        planName: await planName(deps.db, to),
      },
    };
  },
  'application.plan_change_declined': async (deps, change) => {
    const declined = textAt(change.payload, 'declinedPlanId');
    const app = declined === null ? null : await current(getApplication(deps.db, change.entityId));
    if (!app || declined === null) return null;
    return {
      key: 'plan_change_declined',
      accountId: app.accountId,
      values: {
        ...(await applicationValues(deps, app)),
        requestedPlanName: await planName(deps.db, declined),
        planName: await planName(deps.db, app.planId),
      },
    };
  },
  // the production application approval made is the entity; the partner knows the sandbox one that asked
  'application.promoted': (deps, change) => goLiveDecided(deps, change, 'approved'),
  'application.golive_rejected': (deps, change) => goLiveDecided(deps, change, 'rejected'),
  // the suspended production application is the entity; the go-live page to ask again is the sandbox one's
  'application.production_revoked': async (deps, change) => {
    const sandboxId = textAt(change.payload, 'request', 'applicationId');
    const app = sandboxId === null ? null : await current(getApplication(deps.db, sandboxId));
    if (!app) return null;
    const values = await applicationValues(deps, app);
    return {
      key: 'production_revoked',
      accountId: app.accountId,
      values: {
        ...values,
        productionApplicationName:
          textAt(change.payload, 'application', 'name') ?? `${app.name} (production)`,
        comment: textAt(change.payload, 'request', 'decisionComment') ?? '',
        goLiveUrl: `${values.applicationUrl}/golive`,
      },
    };
  },
};

async function goLiveDecided(
  deps: MailNotifierDeps,
  change: Change,
  decision: 'approved' | 'rejected',
): Promise<PlannedMail | null> {
  const sandboxId = textAt(change.payload, 'request', 'applicationId');
  const app = sandboxId === null ? null : await current(getApplication(deps.db, sandboxId));
  if (!app) return null;
  const values = await applicationValues(deps, app);
  return {
    key: 'golive_decided',
    accountId: app.accountId,
    values: {
      ...values,
      decision,
      comment: textAt(change.payload, 'request', 'decisionComment') ?? '',
      nextStep:
        decision === 'approved'
          ? 'Collect your production key (shown once) on the go-live page.'
          : 'Fix what the comment says, then ask again on the go-live page.',
      goLiveUrl: `${values.applicationUrl}/golive`,
    },
  };
}

async function applicationValues(deps: MailNotifierDeps, app: Application): Promise<Record<string, string>> {
  const [account, service] = await Promise.all([
    getAccount(deps.db, app.accountId),
    getService(deps.db, app.serviceId),
  ]);
  return {
    accountName: account.name,
    applicationName: app.name,
    applicationId: app.id,
    serviceName: service.name,
    applicationUrl: `${deps.portalUrl}/apps/${app.id}`,
  };
}

/** A plan's name; its id when the plan was deleted since. */
async function planName(db: Executor, planId: string): Promise<string> {
  return (await current(getPlan(db, planId)))?.name ?? planId;
}

/** The entity, or null when it is gone since the change (deleted right after): nobody to tell about it. */
async function current<T>(read: Promise<T>): Promise<T | null> {
  try {
    return await read;
  } catch (err) {
    if (err instanceof TrellisError && err.code === 'not_found') return null;
    throw err;
  }
}

/** A string inside a change's payload (payloads are JSON: read, not trusted to have a shape). */
function textAt(payload: unknown, ...path: string[]): string | null {
  let value = payload;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return null;
    value = (value as Record<string, unknown>)[key];
  }
  return typeof value === 'string' ? value : null;
}
