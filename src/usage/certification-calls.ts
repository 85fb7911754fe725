/**
 * The call log of certification runs (issue 11): the gateway marks each call of a certifying sandbox application
 * (`UsageRecord.certification`), the usage recorder keeps the marked calls with the usage it sums and writes them
 * to `certification_calls` when it flushes — in batches, never one write per call — where the run's checks read
 * them. Calls of applications without a running run carry no mark and cost nothing here.
 */
import type { Executor } from '../store/index.js';

/** What the gateway knows of a call of a certification run, beyond the usage record itself. */
export interface CertificationMark {
  runId: string;
  /** The fault the gateway injected into this call, if any. */
  fault: 'rate_limit' | 'server_error' | 'unavailable' | 'slow' | 'expired_token' | null;
  /** The path as the client sent it (without the query string). */
  path: string;
  /** The `Idempotency-Key` header, '' when none. */
  idempotencyKey: string;
  /** Which credential: the token's `jti` (oauth2), else the start of the key's stored hash. */
  credential: string;
}

export interface CertificationCallRow {
  run_id: string;
  at: string;
  method: string;
  path: string;
  route: string;
  status: number;
  fault: string;
  retry_after_s: number;
  idempotency_key: string;
  credential: string;
  latency_ms: number;
}

const CHUNK = 200;

/** The row of a marked call. */
export function certificationCallRow(
  mark: CertificationMark,
  call: { at: number; method: string; route: string; status: number; retryAfterS: number; latencyMs: number },
): CertificationCallRow {
  return {
    run_id: mark.runId,
    at: new Date(call.at).toISOString(),
    method: call.method.slice(0, 16),
    path: mark.path.slice(0, 512),
    route: call.route.slice(0, 40),
    status: call.status,
    fault: mark.fault ?? '',
    retry_after_s: call.retryAfterS,
    idempotency_key: mark.idempotencyKey.slice(0, 255),
    credential: mark.credential.slice(0, 64),
    latency_ms: Math.round(call.latencyMs),
  };
}

/** Writes marked calls (a run deleted meanwhile takes its calls with it: rows of unknown runs are left out). */
export async function addCertificationCalls(
  db: Executor,
  rows: readonly CertificationCallRow[],
): Promise<void> {
  if (rows.length === 0) return;
  const cdb = db.withTables<{ certification_calls: CertificationCallRow }>();
  const runIds = [...new Set(rows.map((r) => r.run_id))];
  const known = new Set(
    (
      await db
        .withTables<{ certification_runs: { id: string } }>()
        .selectFrom('certification_runs')
        .select('id')
        .where('id', 'in', runIds)
        .execute()
    ).map((r) => r.id),
  );
  const kept = rows.filter((r) => known.has(r.run_id));
  for (let i = 0; i < kept.length; i += CHUNK) {
    await cdb
      .insertInto('certification_calls')
      .values(kept.slice(i, i + CHUNK))
      .execute();
  }
}
