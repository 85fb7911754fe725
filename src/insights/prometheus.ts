/**
 * Insights as Prometheus gauges, with bounded label sets: per service (its system name), and per application only
 * for the services whose insight setting `metricsPerApplication` asks for it (the operator accepts one series set
 * per application). Open findings by kind and severity, and each service's health over the last `windowMinutes`
 * (5): calls, latency percentiles (within ±9.6 %) and error shares by class.
 */
import type { Executor } from '../store/index.js';
import { type Health, healthOf } from './health.js';
import { type RouteCallRow, selectRouteCalls, selectSettings } from './insights.store.js';
import { mergeSettings } from './settings.js';

const HELP: Record<string, string> = {
  trellis_insights_open_findings: 'Findings not yet resolved, per service, kind and severity.',
  trellis_insights_calls: 'Calls per service over the health window.',
  trellis_insights_latency_ms:
    'Latency percentiles per service over the health window (gateway + upstream, ±9.6 %).',
  trellis_insights_error_ratio:
    'Share of calls per service and class (4xx, 429, 5xx) over the health window.',
  trellis_insights_application_calls:
    'Calls per application over the health window (services with metricsPerApplication only).',
  trellis_insights_application_latency_ms:
    'Latency percentiles per application over the health window (services with metricsPerApplication only).',
  trellis_insights_application_error_ratio:
    'Share of calls per application and class over the health window (services with metricsPerApplication only).',
};

/** The health gauges of one label set (a service's, or an application's) under the given metric names. */
function healthLines(
  out: Record<string, string[]>,
  names: { calls: string; latency: string; errors: string },
  labels: Record<string, string>,
  h: Health,
): void {
  out[names.calls]!.push(line(names.calls, labels, h.calls));
  for (const [q, v] of [
    ['0.5', h.p50],
    ['0.95', h.p95],
    ['0.99', h.p99],
  ] as const) {
    if (v !== null) out[names.latency]!.push(line(names.latency, { ...labels, quantile: q }, v));
  }
  for (const [cls, v] of [
    ['4xx', h.clientErrorRate],
    ['429', h.rateLimitedRate],
    ['5xx', h.serverErrorRate],
  ] as const) {
    out[names.errors]!.push(line(names.errors, { ...labels, class: cls }, v));
  }
}

const SERVICE = {
  calls: 'trellis_insights_calls',
  latency: 'trellis_insights_latency_ms',
  errors: 'trellis_insights_error_ratio',
};
const APPLICATION = {
  calls: 'trellis_insights_application_calls',
  latency: 'trellis_insights_application_latency_ms',
  errors: 'trellis_insights_application_error_ratio',
};

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function line(name: string, labels: Record<string, string>, value: number): string {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',');
  return `${name}{${l}} ${Number.isFinite(value) ? value : 0}`;
}

export async function insightsMetrics(db: Executor, now: number, windowMinutes = 5): Promise<string> {
  const services = await db.selectFrom('services').select(['id', 'system_name']).orderBy('id').execute();
  const out: Record<string, string[]> = Object.fromEntries(Object.keys(HELP).map((k) => [k, []]));
  const open = await db
    .withTables<{ insight_findings: { service_id: string; kind: string; severity: string; state: string } }>()
    .selectFrom('insight_findings')
    .select((eb) => ['service_id', 'kind', 'severity', eb.fn.countAll<number>().as('n')])
    .where('state', '!=', 'resolved')
    .groupBy(['service_id', 'kind', 'severity'])
    .execute();
  const nameOf = new Map(services.map((s) => [s.id, s.system_name]));
  for (const r of open) {
    out.trellis_insights_open_findings!.push(
      line(
        'trellis_insights_open_findings',
        { service: nameOf.get(r.service_id) ?? r.service_id, kind: r.kind, severity: r.severity },
        Number(r.n),
      ),
    );
  }
  const to = now - (now % 60_000) + 60_000;
  const from = to - windowMinutes * 60_000;
  for (const s of services) {
    const rows = await selectRouteCalls(db, {
      serviceId: s.id,
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
    });
    const service = s.system_name;
    healthLines(out, SERVICE, { service }, healthOf(rows));
    if (!mergeSettings(await selectSettings(db, s.id)).metricsPerApplication) continue;
    const byApplication = new Map<string, RouteCallRow[]>();
    for (const r of rows) {
      const list = byApplication.get(r.application_id);
      if (list) list.push(r);
      else byApplication.set(r.application_id, [r]);
    }
    for (const [application, list] of [...byApplication].sort(([a], [b]) => (a < b ? -1 : 1))) {
      healthLines(out, APPLICATION, { service, application }, healthOf(list));
    }
  }
  const text: string[] = [];
  for (const [name, help] of Object.entries(HELP)) {
    text.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, ...(out[name] ?? []));
  }
  return `${text.join('\n')}\n`;
}
