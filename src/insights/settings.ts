/**
 * Thresholds of the detectors, per service: stored as JSON in `insight_settings`; a key absent takes its default.
 * The defaults aim at few false positives: every ratio needs `minCalls` calls in the window first.
 */
import { Type as T, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

export const InsightSettingsSchema = T.Object(
  {
    windowMinutes: T.Integer({ minimum: 1, maximum: 1440, description: 'the window detectors look at' }),
    minCalls: T.Integer({
      minimum: 1,
      maximum: 1_000_000,
      description: 'calls in the window before any ratio counts',
    }),
    tokenChurnRatio: T.Number({
      minimum: 0.01,
      maximum: 100,
      description: 'tokens issued per API call that is churn',
    }),
    pollPairs: T.Array(
      T.Object({
        create: T.String({ maxLength: 64, description: 'mapping rule id of the create (POST)' }),
        read: T.String({ maxLength: 64, description: 'mapping rule id of the read (GET)' }),
      }),
      {
        maxItems: 50,
        description: 'declared create → read pairs; empty: every POST rule → GET rule pair counts',
      },
    ),
    pollWithinSeconds: T.Integer({
      minimum: 1,
      maximum: 60,
      description: 'a read this soon after a create is a poll',
    }),
    pollRatio: T.Number({ minimum: 0.01, maximum: 100, description: 'polls per create that make a finding' }),
    minCreates: T.Integer({
      minimum: 1,
      maximum: 1_000_000,
      description: 'creates in the window before polls count',
    }),
    retryStormCalls: T.Integer({
      minimum: 1,
      maximum: 1_000_000,
      description: 'calls before Retry-After passed',
    }),
    clientErrorRate: T.Number({ minimum: 0, maximum: 1, description: 'share of 4xx (429 excluded)' }),
    serverErrorRate: T.Number({ minimum: 0, maximum: 1, description: 'share of 5xx' }),
    latencyRiseFactor: T.Number({ minimum: 1, maximum: 1000, description: 'p95 over the baseline p95' }),
    baselineHours: T.Integer({
      minimum: 1,
      maximum: 720,
      description: 'the baseline: hours before the window',
    }),
    dormantDays: T.Integer({
      minimum: 1,
      maximum: 3650,
      description: 'days without calls that make an application dormant',
    }),
    resolveAfterMinutes: T.Integer({
      minimum: 1,
      maximum: 10_080,
      description: 'a finding resolves after this long unseen',
    }),
    metricsPerApplication: T.Boolean({
      description:
        'Prometheus health gauges per application too (a series set per application of the service: mind the cardinality)',
    }),
  },
  { additionalProperties: false },
);

export type InsightSettings = Static<typeof InsightSettingsSchema>;

export const defaultInsightSettings: Readonly<InsightSettings> = Object.freeze({
  windowMinutes: 60,
  minCalls: 20,
  tokenChurnRatio: 0.5,
  pollPairs: [],
  pollWithinSeconds: 5,
  pollRatio: 0.8,
  minCreates: 5,
  retryStormCalls: 5,
  clientErrorRate: 0.25,
  serverErrorRate: 0.05,
  latencyRiseFactor: 3,
  baselineHours: 24,
  dormantDays: 30,
  resolveAfterMinutes: 60,
  metricsPerApplication: false,
});

export const InsightSettingsPatch = T.Partial(InsightSettingsSchema, { additionalProperties: false });

/** Stored JSON merged over the defaults; a stored value no longer valid is ignored (its default is used). */
export function mergeSettings(stored: string | null | undefined): InsightSettings {
  const out: InsightSettings = {
    ...defaultInsightSettings,
    pollPairs: [...defaultInsightSettings.pollPairs],
  };
  if (!stored) return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stored);
  } catch {
    return out;
  }
  if (typeof parsed !== 'object' || parsed === null) return out;
  for (const [key, value] of Object.entries(parsed)) {
    if (!(key in out)) continue;
    const candidate = { ...out, [key]: value };
    if (Value.Check(InsightSettingsSchema, candidate)) Object.assign(out, { [key]: value });
  }
  return out;
}
