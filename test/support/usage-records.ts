import type { UsageRecord } from '../../src/usage/index.js';

/** A gateway call as the usage recorder receives it: one hit of app_1 on 2026-05-10 at 10:00 unless `fields` say otherwise. */
export function usageRecord(fields: Partial<UsageRecord>): UsageRecord {
  return {
    at: Date.UTC(2026, 4, 10, 10, 0),
    serviceId: 'svc_1',
    applicationId: 'app_1',
    accountId: 'acc_1',
    metrics: [{ metricId: 'hits', delta: 1 }],
    status: 200,
    latencyMs: 2,
    bytesIn: 10,
    bytesOut: 100,
    endUser: null,
    clientIp: '127.0.0.1',
    ...fields,
  };
}
