/** An application's health over a period, overall and per route (the numbers the API, console and portal show). */
import type { Executor } from '../store/index.js';
import { type Health, healthOf } from './health.js';
import { type RouteCallRow, selectRouteCalls } from './insights.store.js';

export interface RouteHealth extends Health {
  route: string;
  /** `METHOD pattern` of the mapping rule; '(no rule)' for calls no rule matched. */
  label: string;
}

export interface ApplicationHealth extends Health {
  applicationId: string;
  from: string;
  to: string;
  routes: RouteHealth[];
}

export async function applicationHealth(
  db: Executor,
  applicationId: string,
  serviceId: string,
  from: number,
  to: number,
): Promise<ApplicationHealth> {
  const fromIso = new Date(from - (from % 60_000)).toISOString();
  const toIso = new Date(to).toISOString();
  const rows = await selectRouteCalls(db, { applicationId, from: fromIso, to: toIso });
  const byRoute = new Map<string, RouteCallRow[]>();
  for (const r of rows) {
    const list = byRoute.get(r.route);
    if (list) list.push(r);
    else byRoute.set(r.route, [r]);
  }
  const rules = new Map(
    (
      await db
        .selectFrom('mapping_rules')
        .select(['id', 'http_method', 'pattern'])
        .where('service_id', '=', serviceId)
        .execute()
    ).map((r) => [r.id, `${r.http_method} ${r.pattern.replace(/\$$/, '')}`]),
  );
  const routes = [...byRoute]
    .map(([route, list]) => ({
      route,
      label: route === '' ? '(no rule)' : (rules.get(route) ?? route),
      ...healthOf(list),
    }))
    .sort((a, b) => b.calls - a.calls);
  return { applicationId, from: fromIso, to: toIso, ...healthOf(rows), routes };
}
