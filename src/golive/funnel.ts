/**
 * The programme funnel (issue 11): how many partner accounts reached each step of the path to live — signed up,
 * first successful sandbox call, go-live requested, live in production — and how long signup → first call and
 * signup → live took (medians). The number a programme wants short.
 */
import type { Executor } from '../store/index.js';
import type { UsageTables } from '../usage/index.js';
import type { CertificationTables } from './certification-tables.js';
import type { GoLiveTables } from './golive-tables.js';

export interface FunnelAccount {
  accountId: string;
  name: string;
  signedUpAt: string;
  firstSandboxCallAt: string | null;
  /** The first certification run of the account that passed (issue 11). */
  certifiedAt: string | null;
  goLiveRequestedAt: string | null;
  liveAt: string | null;
}

export interface Funnel {
  stages: {
    stage: 'signed_up' | 'first_sandbox_call' | 'certified' | 'golive_requested' | 'live';
    accounts: number;
  }[];
  /** Medians in seconds; null when no account reached the step. */
  medianSecondsToFirstCall: number | null;
  medianSecondsToLive: number | null;
  accounts: FunnelAccount[];
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const seconds = (from: string, to: string | null) =>
  to === null ? null : Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);

/** The funnel over every account, or over the applications of one service (accounts still count as signed up). */
export async function programmeFunnel(
  db: Executor,
  filter: { serviceId?: string | undefined },
): Promise<Funnel> {
  const udb = db.withTables<UsageTables & GoLiveTables & CertificationTables>();
  const accounts = await db
    .selectFrom('accounts')
    .select(['id', 'name', 'created_at'])
    .orderBy('id')
    .limit(10_000)
    .execute();
  let calls = udb
    .selectFrom('usage_calls')
    .innerJoin('applications', 'applications.id', 'usage_calls.application_id')
    .select(['applications.account_id as account_id', (eb) => eb.fn.min('usage_calls.bucket').as('first')])
    .where('applications.environment', '=', 'sandbox')
    .where('usage_calls.status', '<', 400)
    .groupBy('applications.account_id');
  if (filter.serviceId) calls = calls.where('applications.service_id', '=', filter.serviceId);
  let requests = udb
    .selectFrom('golive_requests')
    .select([
      'account_id',
      (eb) => eb.fn.min('requested_at').as('requested'),
      (eb) => eb.fn.min('decided_at').filterWhere('state', 'in', ['approved', 'revoked']).as('live'),
    ])
    .groupBy('account_id');
  if (filter.serviceId) requests = requests.where('service_id', '=', filter.serviceId);
  let passed = udb
    .selectFrom('certification_runs')
    .select(['account_id', (eb) => eb.fn.min('finished_at').as('first')])
    .where('state', '=', 'passed')
    .groupBy('account_id');
  if (filter.serviceId) passed = passed.where('service_id', '=', filter.serviceId);
  const certified = new Map((await passed.execute()).map((r) => [r.account_id, r.first]));
  const firstCall = new Map((await calls.execute()).map((r) => [r.account_id, r.first]));
  const golive = new Map((await requests.execute()).map((r) => [r.account_id, r]));
  const rows: FunnelAccount[] = accounts.map((a) => {
    const g = golive.get(a.id);
    return {
      accountId: a.id,
      name: a.name,
      signedUpAt: a.created_at,
      firstSandboxCallAt: firstCall.get(a.id) ?? null,
      certifiedAt: certified.get(a.id) ?? null,
      goLiveRequestedAt: g?.requested ?? null,
      liveAt: g?.live ?? null,
    };
  });
  const count = (f: (r: FunnelAccount) => boolean) => rows.filter(f).length;
  return {
    stages: [
      { stage: 'signed_up', accounts: rows.length },
      { stage: 'first_sandbox_call', accounts: count((r) => r.firstSandboxCallAt !== null) },
      { stage: 'certified', accounts: count((r) => r.certifiedAt !== null) },
      { stage: 'golive_requested', accounts: count((r) => r.goLiveRequestedAt !== null) },
      { stage: 'live', accounts: count((r) => r.liveAt !== null) },
    ],
    medianSecondsToFirstCall: median(rows.flatMap((r) => seconds(r.signedUpAt, r.firstSandboxCallAt) ?? [])),
    medianSecondsToLive: median(rows.flatMap((r) => seconds(r.signedUpAt, r.liveAt) ?? [])),
    accounts: rows,
  };
}
