/**
 * Which of a resource's events an application already receives by webhook (issue 9 → insights, issue 10): a
 * poll-after-create finding is more severe when the application polls a resource whose events it is subscribed
 * to. Only store reads: insights imports this module directly.
 */
import type { Executor } from '../store/index.js';
import { consumerEndpointTypes, listEventTypeRows } from './consumer.store.js';

/** `payment-requests`, `PaymentRequest`, `paymentrequests` → `paymentrequest`. */
function resourceKey(name: string): string {
  const k = name.toLowerCase().replace(/[^a-z0-9]/g, '');
  return k.endsWith('s') ? k.slice(0, -1) : k;
}

/**
 * The resource a route pattern creates: its last literal segment (`/v1/paymentrequests$` → `paymentrequest`);
 * empty when there is none.
 */
export function resourceOfPattern(pattern: string): string {
  const literal = pattern
    .replace(/\$$/, '')
    .split('?')[0]!
    .split('/')
    .filter((s) => s !== '' && !s.includes('{'));
  return resourceKey(literal.at(-1) ?? '');
}

/**
 * The event types of the resource (`paymentrequest.*` for `paymentrequest`) that an enabled endpoint of the
 * application subscribes to (by name, or `*` for all its service declares); sorted, empty when none.
 */
export async function subscribedResourceEvents(
  db: Executor,
  applicationId: string,
  serviceId: string,
  resource: string,
): Promise<string[]> {
  if (resource === '') return [];
  const subscriptions = await consumerEndpointTypes(db, applicationId);
  if (subscriptions.length === 0) return [];
  const ofResource = (await listEventTypeRows(db, serviceId))
    .map((r) => r.name)
    .filter((name) => resourceKey(name.split('.')[0] ?? '') === resource);
  const wanted = new Set(subscriptions.flat());
  return ofResource.filter((name) => wanted.has('*') || wanted.has(name)).sort();
}
