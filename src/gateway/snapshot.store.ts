/** Every query the gateway makes. None runs per request in the common case: see snapshot.ts and credential-cache.ts. */
import type {
  Executor,
  MappingRuleTable,
  MetricTable,
  PlanDisabledMetricTable,
  PlanLimitTable,
  PlanTable,
  ServiceEndUserLimitTable,
  ServiceTable,
} from '../store/index.js';
import type { Selectable } from 'kysely';

export interface CatalogRows {
  services: Selectable<ServiceTable>[];
  metrics: Selectable<MetricTable>[];
  rules: Selectable<MappingRuleTable>[];
  plans: Selectable<PlanTable>[];
  limits: Selectable<PlanLimitTable>[];
  disabled: Selectable<PlanDisabledMetricTable>[];
  /** End-user limits of whole services (every plan's end users, unless the plan sets its own). */
  serviceEndUserLimits?: Selectable<ServiceEndUserLimitTable>[];
}

/** The whole catalogue (services, metrics, rules, plans, limits): small, loaded at once into the snapshot. */
export async function loadCatalog(db: Executor): Promise<CatalogRows> {
  const [services, metrics, rules, plans, limits, disabled, serviceEndUserLimits] = await Promise.all([
    db.selectFrom('services').selectAll().orderBy('id').execute(),
    db.selectFrom('metrics').selectAll().orderBy('id').execute(),
    db.selectFrom('mapping_rules').selectAll().orderBy('position').orderBy('id').execute(),
    db.selectFrom('plans').selectAll().execute(),
    db.selectFrom('plan_limits').selectAll().execute(),
    db.selectFrom('plan_disabled_metrics').selectAll().execute(),
    db.selectFrom('service_end_user_limits').selectAll().orderBy('id').execute(),
  ]);
  return { services, metrics, rules, plans, limits, disabled, serviceEndUserLimits };
}

/** What the gateway needs to know of an application and its account. */
export interface ApplicationRow {
  application_id: string;
  account_id: string;
  service_id: string;
  plan_id: string;
  app_state: string;
  environment: string;
  app_id: string;
  allowed_ips: string;
  account_state: string;
}

const applicationColumns = [
  'applications.id as application_id',
  'applications.account_id as account_id',
  'applications.service_id as service_id',
  'applications.plan_id as plan_id',
  'applications.state as app_state',
  'applications.environment as environment',
  'applications.app_id as app_id',
  'applications.allowed_ips as allowed_ips',
  'accounts.state as account_state',
] as const;

/** A user key by its hash, with its application and account; `undefined` when no such key exists. */
export async function findUserKey(
  db: Executor,
  secretHash: string,
): Promise<(ApplicationRow & { credential_state: string }) | undefined> {
  return db
    .selectFrom('credentials')
    .innerJoin('applications', 'applications.id', 'credentials.application_id')
    .innerJoin('accounts', 'accounts.id', 'applications.account_id')
    .select([...applicationColumns, 'credentials.state as credential_state'])
    .where('credentials.secret_hash', '=', secretHash)
    .where('credentials.kind', '=', 'user_key')
    .executeTakeFirst();
}

/** An application by its public `app_id`, with its account and the hashes and states of its app keys. */
export async function findApplicationByAppId(
  db: Executor,
  appId: string,
): Promise<{ application: ApplicationRow; keys: { secret_hash: string; state: string }[] } | undefined> {
  const application = await db
    .selectFrom('applications')
    .innerJoin('accounts', 'accounts.id', 'applications.account_id')
    .select(applicationColumns)
    .where('applications.app_id', '=', appId)
    .executeTakeFirst();
  if (!application) return undefined;
  const keys = await db
    .selectFrom('credentials')
    .select(['secret_hash', 'state'])
    .where('application_id', '=', application.application_id)
    .where('kind', '=', 'app_key')
    .execute();
  return { application, keys };
}
