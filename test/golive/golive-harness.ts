/** Helpers for the path-to-live tests: a service with a plan and a catch-all rule, made through the management API. */
import type { Programme } from '../programmes/programme-harness.js';

export interface TestService {
  id: string;
  planId: string;
  upstreamSandbox: string;
}

/** A service routed at `/<systemName>`, one published plan, every call counted on hits. */
export async function makeService(
  p: Programme,
  systemName: string,
  extra: Record<string, unknown> = {},
): Promise<TestService> {
  const svc = await p.api<{ id: string; upstreamSandbox: string }>('POST', '/services', {
    name: systemName,
    systemName,
    upstreamProduction: p.upstream.url,
    ...extra,
  });
  const plan = await p.api<{ id: string }>('POST', `/services/${svc.id}/plans`, {
    name: 'Basic',
    systemName: 'basic',
    state: 'published',
  });
  const hits = (await p.api<{ data: { id: string }[] }>('GET', `/services/${svc.id}/metrics`)).data[0]!;
  await p.api('POST', `/services/${svc.id}/mapping-rules`, {
    httpMethod: 'ANY',
    pattern: '/',
    metricId: hits.id,
  });
  return { id: svc.id, planId: plan.id, upstreamSandbox: svc.upstreamSandbox };
}
