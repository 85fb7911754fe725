/**
 * A fuzzer for the management API, driven by its own OpenAPI document so a new operation is fuzzed without a
 * line here. For every operation it makes malformed requests from a seeded PRNG (the same seed, the same
 * requests): wrong types per field, missing required fields, unknown fields, huge strings, NUL characters,
 * unicode, deep nesting, malformed JSON, wrong content types, hostile path ids and queries, empty PATCHes. They go
 * through fastify's `inject()`; every answer must be below 500, and every 4xx must have the one error shape.
 * Used by test/control/fuzz.test.ts (a bounded sample in CI) and scripts/fuzz.ts (`npm run fuzz`, any size).
 */
import type { LightMyRequestResponse } from 'fastify';
import type { ControlHarness } from './control.js';

type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  default?: unknown;
  $ref?: string;
};

interface OpenApiParameter {
  in: string;
  name: string;
  required?: boolean;
  schema?: Schema;
}

interface OpenApiDocument {
  paths: Record<
    string,
    Record<
      string,
      {
        parameters?: OpenApiParameter[];
        requestBody?: { content?: Record<string, { schema?: Schema }> };
      }
    >
  >;
  components?: { schemas?: Record<string, Schema> };
}

export interface FuzzOperation {
  method: string;
  /** As documented: `/admin/api/services/{id}`. */
  path: string;
  pathParams: string[];
  query: OpenApiParameter[];
  body?: Schema;
}

export interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string;
  /** What was malformed, for a failure report. */
  label: string;
}

export interface FuzzFigures {
  operations: number;
  sent: number;
  ok: number;
  clientErrors: number;
  serverErrors: number;
  /** 4xx answers without the one error shape. */
  badShape: number;
  byStatus: Record<number, number>;
  /** The first failures (5xx or bad shape), for the report. */
  failures: string[];
  ms: number;
}

/** A small, fast, seedable PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** The operations of the document, deletions last (so they do not remove what the other operations probe). */
export function operationsOf(doc: OpenApiDocument): FuzzOperation[] {
  const resolve = (s: Schema | undefined): Schema | undefined => {
    if (!s?.$ref) return s;
    const name = s.$ref.split('/').pop() ?? '';
    return doc.components?.schemas?.[name];
  };
  const ops: FuzzOperation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const params = op.parameters ?? [];
      const body = resolve(op.requestBody?.content?.['application/json']?.schema);
      ops.push({
        method: method.toUpperCase(),
        path,
        pathParams: params.filter((p) => p.in === 'path').map((p) => p.name),
        query: params.filter((p) => p.in === 'query'),
        ...(body && { body }),
      });
    }
  }
  return ops.sort((a, b) => Number(a.method === 'DELETE') - Number(b.method === 'DELETE'));
}

type Rng = () => number;
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;

/** Strings a field may hold; the first one its pattern and length accept makes a valid value. */
const candidates = [
  'fuzz',
  'fuzz_1',
  'http://fuzz.test/',
  'X-Fuzz-Key',
  '/fuzz',
  'fz@fuzz.test',
  'GET',
  '2026-06-01T00:00:00Z',
  'a fuzz description',
  'Fuzz',
];

/** Compiled once per pattern: a new RegExp per call would fill V8's regexp code space over a long run. */
const patterns = new Map<string, RegExp>();
const compiled = (pattern: string): RegExp => {
  let re = patterns.get(pattern);
  if (!re) {
    re = new RegExp(pattern, 'u');
    patterns.set(pattern, re);
  }
  return re;
};

function validString(s: Schema, rng: Rng): string {
  if (s.format === 'email') return `fz${Math.floor(rng() * 1e6)}@fuzz.test`;
  if (s.format === 'date-time') return '2026-06-01T00:00:00Z';
  if (s.format === 'uri' || s.format === 'url') return 'http://fuzz.test/';
  const fits = (c: string) =>
    c.length >= (s.minLength ?? 0) &&
    c.length <= (s.maxLength ?? Number.POSITIVE_INFINITY) &&
    (!s.pattern || compiled(s.pattern).test(c));
  const found = candidates.find(fits) ?? 'x'.repeat(Math.max(1, s.minLength ?? 1));
  // system names must differ from one request to the next, or every create after the first is a conflict
  return rng() < 0.5 && fits(`${found}${Math.floor(rng() * 1000)}`)
    ? `${found}${Math.floor(rng() * 1000)}`
    : found;
}

/** A value the schema accepts (as far as this small generator knows schemas). */
export function validValue(s: Schema | undefined, rng: Rng, depth = 0): unknown {
  if (!s || depth > 8) return 'fuzz';
  if (s.const !== undefined) return s.const;
  if (s.enum) return pick(rng, s.enum);
  const branches = s.anyOf ?? s.oneOf;
  if (branches) return validValue(pick(rng, branches), rng, depth + 1);
  if (s.allOf) return Object.assign({}, ...s.allOf.map((b) => validValue(b, rng, depth + 1)));
  if (s.default !== undefined && rng() < 0.3) return s.default;
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'string':
      return validString(s, rng);
    case 'integer':
    case 'number':
      return Math.max(s.minimum ?? 1, Math.min(s.maximum ?? 100, 1 + Math.floor(rng() * 100)));
    case 'boolean':
      return rng() < 0.5;
    case 'null':
      return null;
    case 'array':
      return Array.from({ length: s.minItems ?? (rng() < 0.5 ? 0 : 1) }, () =>
        validValue(s.items, rng, depth + 1),
      );
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(s.properties ?? {})) {
        // a password is hashed with argon2, slow by design: an optional one is sent now and then only
        const chance = k === 'password' ? 0.05 : 0.4;
        if (s.required?.includes(k) || rng() < chance) out[k] = validValue(v, rng, depth + 1);
      }
      return out;
    }
    default:
      return 'fuzz';
  }
}

const nasty: readonly unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  1e308,
  -Number.MAX_SAFE_INTEGER - 2,
  '',
  ' ',
  'a\u0000b',
  '\u0000',
  'x'.repeat(5_000),
  '😀🚀 ñ 中文 \u202e RTL',
  '\ud800',
  "'; drop table services; --",
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '%00%ff',
  '{{7*7}}',
  [],
  [1, 'two', null],
  {},
  { nested: { deeper: [1] } },
  '2026-13-45T99:99:99Z',
  'http://127.0.0.1:1/\r\nX-Injected: 1',
  '__proto__',
];

function deepValue(levels: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { d: v };
  return v;
}

/** A hostile text for a path segment, already percent-encoded where it should be. */
const hostileIds: readonly string[] = [
  '%ff',
  '%e0%80%af',
  '..',
  '%2e%2e',
  '%2e%2e%2f%2e%2e',
  '.',
  '%00',
  'a%00b',
  'x'.repeat(64),
  'x'.repeat(65),
  'x'.repeat(150),
  '1',
  '-1',
  '0',
  '1e308',
  'null',
  'undefined',
  'true',
  '%20',
  '%E2%80%AE',
  '%F0%9F%98%80',
  "'%20or%201=1--",
  '%25',
  '%',
  'svc_0000000000000000000000000x',
  '__proto__',
  'constructor',
  '%5B%5D',
  '%3Cscript%3E',
  '~',
];

const wrongContentTypes = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=fuzz',
  'application/xml',
  'application/json; charset=latin1',
  'application/octet-stream',
  'application/jsonx',
  'application/yaml',
  'application/json, text/plain',
];

const malformedJson = [
  '{',
  '{"a":',
  "{'a': 1}",
  '{"a": 1,}',
  '{"a": 1}{"b": 2}',
  'undefined',
  'NaN',
  '\ufeff{}',
  '{"a": 1e99999}',
  '{"__proto__": {"admin": true}}',
  '{"constructor": {"prototype": {"admin": true}}}',
  `{"a": "${'\\u0000'}"}`,
  '{"a": "\\ud800"}',
  `[${'['.repeat(3000)}${']'.repeat(3000)}]`,
  '\u0000',
  '   ',
];

const hostileYaml = [
  'openapi: 3.0.0\npaths:\n  /fuzz:\n    get: {}\n',
  `${'['.repeat(3000)}${']'.repeat(3000)}`,
  `${'- '.repeat(200)}x`,
  'a: &a [1, 2]\nb: [*a, *a, *a]\nc: [*b, *b, *b]\n',
  'a: !!js/function "function () {}"\n',
  'a: "\\0"\n',
  ': : :\n\t- [',
  '%YAML 9.9\n---\na: 1\n',
  'openapi: 3.0.0\npaths: {"/x": {"get": {"operationId": "\\0"}}}\n',
];

/** Body fields that name an entity, by the collection their ids come from. */
const idFields: Record<string, string> = {
  metricId: 'methods',
  planId: 'plans',
  serviceId: 'services',
  accountId: 'accounts',
  applicationId: 'applications',
};

/** A generated body with real ids in the fields that name an entity (`metricId`, `planId`, …), at any depth. */
function withRealIds(value: unknown, ids: Record<string, string[]>, rng: Rng): unknown {
  if (Array.isArray(value)) return value.map((v) => withRealIds(v, ids, rng));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const real = idFields[k] ? ids[idFields[k]] : undefined;
    out[k] = real && typeof v === 'string' ? pick(rng, real) : withRealIds(v, ids, rng);
  }
  return out;
}

/** The kind of id a path segment names, by the collection before it (`/services/{id}` → services). */
function collectionOf(path: string, param: string): string {
  const parts = path.split('/');
  const at = parts.indexOf(`{${param}}`);
  return at > 0 ? parts[at - 1]! : '';
}

/**
 * `perOperation` malformed requests for one operation. `ids` gives real ids by collection (`services`,
 * `metrics`, …), so some requests reach the handlers rather than stopping at a 404.
 */
export function malformedRequests(
  op: FuzzOperation,
  perOperation: number,
  seed: number,
  ids: Record<string, string[]>,
  token: string,
): FuzzRequest[] {
  const rng = prng(hash(`${seed} ${op.method} ${op.path}`));
  const out: FuzzRequest[] = [];
  const takesBody = op.method === 'POST' || op.method === 'PUT' || op.method === 'PATCH';
  for (let i = 0; i < perOperation; i++) {
    const labels: string[] = [];
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    // path: mostly a real id of the right kind; often a hostile one
    let path = op.path;
    for (const param of op.pathParams) {
      const real = ids[collectionOf(op.path, param)] ?? [];
      const hostile = real.length === 0 || rng() < 0.45;
      const value = hostile ? pick(rng, hostileIds) : pick(rng, real);
      if (hostile) labels.push(`${param}=${value.slice(0, 30)}`);
      path = path.replace(`{${param}}`, value);
    }
    // query: the declared parameters valid, wrong or hostile, and now and then an unknown one
    const query: string[] = [];
    for (const q of op.query) {
      const r = rng();
      if (r < 0.3 && !q.required) continue;
      if (r < 0.65) {
        query.push(`${q.name}=${encodeURIComponent(String(validValue(q.schema, rng)))}`);
      } else {
        const bad = pick(rng, [
          ...hostileIds,
          'abc',
          '-5',
          '99999999999999999999',
          '1.5',
          '',
          encodeURIComponent('x'.repeat(3000)),
        ]);
        labels.push(`?${q.name}=${bad.slice(0, 30)}`);
        query.push(`${q.name}=${bad}`);
        if (rng() < 0.2) query.push(`${q.name}=${bad}`);
      }
    }
    if (rng() < 0.1) {
      query.push(`${pick(rng, ['unknown', '__proto__', 'limit[]', 'a%00'])}=${pick(rng, hostileIds)}`);
      labels.push('unknown query');
    }
    const url = `${path}${query.length > 0 ? `?${query.join('&')}` : ''}`;

    // body
    let payload: string | undefined;
    if (takesBody || rng() < 0.1) {
      const r = rng();
      const value = (op.body ? withRealIds(validValue(op.body, rng), ids, rng) : {}) as Record<
        string,
        unknown
      >;
      const fields = Object.keys(op.body?.properties ?? {});
      headers['content-type'] = 'application/json';
      if (r < 0.12) {
        labels.push('valid body');
        payload = JSON.stringify(value);
      } else if (r < 0.4 && fields.length > 0) {
        const field = pick(rng, fields);
        const bad = pick(rng, nasty);
        labels.push(`${field}: ${JSON.stringify(bad)?.slice(0, 30)}`);
        payload = JSON.stringify({ ...value, [field]: bad });
      } else if (r < 0.47 && (op.body?.required?.length ?? 0) > 0) {
        const field = pick(rng, op.body!.required!);
        labels.push(`missing ${field}`);
        const { [field]: _dropped, ...rest } = value;
        payload = JSON.stringify(rest);
      } else if (r < 0.53) {
        const key = pick(rng, ['colour', '__proto__', 'constructor', 'a\u0000b', '', 'id', 'createdAt']);
        labels.push(`unknown field ${JSON.stringify(key)}`);
        payload = JSON.stringify({ ...value, [key]: pick(rng, nasty) });
      } else if (r < 0.6) {
        const levels = pick(rng, [20, 70, 500, 2000]);
        labels.push(`nested ${levels}`);
        payload = JSON.stringify({
          ...value,
          [fields.length > 0 ? pick(rng, fields) : 'deep']: deepValue(levels),
        });
      } else if (r < 0.7) {
        const text = pick(rng, malformedJson);
        labels.push(`malformed JSON ${JSON.stringify(text.slice(0, 20))}`);
        payload = text;
      } else if (r < 0.78) {
        const type = pick(rng, wrongContentTypes);
        labels.push(`content-type ${type}`);
        headers['content-type'] = type;
        payload = type.includes('yaml')
          ? pick(rng, hostileYaml)
          : rng() < 0.5
            ? JSON.stringify(value)
            : 'name=fuzz&x=%00';
      } else if (r < 0.84) {
        const top = pick(rng, ['null', '[]', '"text"', '42', 'true', '[{}]']);
        labels.push(`top-level ${top}`);
        payload = top;
      } else if (r < 0.9) {
        labels.push('empty object');
        payload = '{}';
      } else if (r < 0.93) {
        labels.push('empty body');
        payload = '';
      } else if (r < 0.96) {
        labels.push('body over the limit');
        payload = JSON.stringify({ ...value, [fields[0] ?? 'big']: 'x'.repeat(70 * 1024) });
      } else if (r < 0.98) {
        labels.push('no content-type');
        delete headers['content-type'];
        payload = JSON.stringify(value);
      } else {
        labels.push('duplicate keys');
        const [first = 'name'] = fields;
        payload = `{"${first}": "a", "${first}": 12, "${first}": null}`;
      }
    }
    out.push({
      method: op.method,
      url,
      headers,
      ...(payload !== undefined && { payload }),
      label: `${op.method} ${op.path} [${labels.join(', ') || 'as documented'}]`,
    });
  }
  return out;
}

/** True when a body is `{"error": {"code", "message", "requestId"}}` with strings. */
export function hasErrorShape(res: LightMyRequestResponse): boolean {
  if (!String(res.headers['content-type'] ?? '').startsWith('application/json')) return false;
  try {
    const e = (res.json() as { error?: Record<string, unknown> }).error;
    return (
      typeof e === 'object' &&
      e !== null &&
      typeof e.code === 'string' &&
      typeof e.message === 'string' &&
      typeof e.requestId === 'string'
    );
  } catch {
    return false;
  }
}

let fixtureRounds = 0;

/** Real ids of every kind, made on the harness's store, for requests to reach the handlers. */
export async function makeFixtures(h: ControlHarness): Promise<Record<string, string[]>> {
  const post = async (url: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await h.call('POST', url, body);
    if (res.statusCode !== 201) throw new Error(`fuzz fixtures: ${url} ${res.statusCode} ${res.body}`);
    return res.json() as Record<string, unknown>;
  };
  const ids: Record<string, string[]> = {};
  const round = ++fixtureRounds;
  const add = (collection: string, id: unknown) => {
    ids[collection] = [...(ids[collection] ?? []), String(id)];
  };
  for (const m of [1, 2]) {
    const n = `${round}${m}`;
    const svc = await post('/admin/api/services', {
      name: `Fuzz ${n}`,
      systemName: `fuzz-${n}`,
      upstreamProduction: 'http://127.0.0.1:9/',
    });
    add('services', svc.id);
    const metric = await post(`/admin/api/services/${svc.id}/metrics`, {
      systemName: 'bytes',
      friendlyName: 'B',
    });
    add('metrics', metric.id);
    const method = await post(`/admin/api/services/${svc.id}/methods`, {
      systemName: 'read',
      friendlyName: 'R',
    });
    add('methods', method.id);
    add('disabled-methods', method.id);
    const rule = await post(`/admin/api/services/${svc.id}/mapping-rules`, {
      httpMethod: 'GET',
      pattern: '/r',
      metricId: method.id,
    });
    add('mapping-rules', rule.id);
    const plan = await post(`/admin/api/services/${svc.id}/plans`, { name: 'P', systemName: 'p' });
    add('plans', plan.id);
    const limit = (
      await h.call('PUT', `/admin/api/plans/${plan.id}/limits`, {
        metricId: method.id,
        period: 'day',
        value: 5,
      })
    ).json();
    add('limits', limit.id);
    const account = await post('/admin/api/accounts', { name: `Acme ${n}` });
    add('accounts', account.id);
    const user = await post(`/admin/api/accounts/${account.id}/users`, {
      email: `u${n}@fuzz.test`,
      name: 'U',
    });
    add('users', user.id);
    const invitation = await post(`/admin/api/accounts/${account.id}/invitations`, {
      email: `i${n}@fuzz.test`,
    });
    add('invitations', invitation.id);
    const app = await post('/admin/api/applications', {
      accountId: account.id,
      serviceId: svc.id,
      name: 'App',
    });
    add('applications', app.id);
    add('keys', (app.credentials as { id: string }[])[0]!.id);
    const field = await post('/admin/api/custom-fields', { target: 'account', name: `f${n}`, label: 'F' });
    add('custom-fields', field.id);
    const admin = await post('/admin/api/admin-users', {
      email: `adm${n}@fuzz.test`,
      name: 'Adm',
      password: 'a long fuzz password',
    });
    add('admin-users', admin.id);
    const token = await post('/admin/api/admin-tokens', { name: `t${n}`, scope: 'read' });
    add('admin-tokens', token.id);
  }
  return ids;
}

function newFigures(operations: number): FuzzFigures {
  return {
    operations,
    sent: 0,
    ok: 0,
    clientErrors: 0,
    serverErrors: 0,
    badShape: 0,
    byStatus: {},
    failures: [],
    ms: 0,
  };
}

function recordAnswer(figures: FuzzFigures, req: FuzzRequest, res: LightMyRequestResponse): void {
  figures.sent++;
  figures.byStatus[res.statusCode] = (figures.byStatus[res.statusCode] ?? 0) + 1;
  if (res.statusCode >= 500) figures.serverErrors++;
  else if (res.statusCode >= 400) figures.clientErrors++;
  else figures.ok++;
  const shapeless = res.statusCode >= 400 && !hasErrorShape(res);
  if (shapeless) figures.badShape++;
  if ((res.statusCode >= 500 || shapeless) && figures.failures.length < 25) {
    figures.failures.push(`${res.statusCode} ${req.label} → ${res.body.slice(0, 200)}`);
  }
}

const send = (h: ControlHarness, r: FuzzRequest) =>
  h.app.inject({
    method: r.method as 'GET',
    url: r.url,
    headers: r.headers,
    ...(r.payload !== undefined && { payload: r.payload }),
  });

/**
 * Every write operation (POST, PUT, PATCH, DELETE) sent `copies` times at once, identical, with real ids and a
 * valid body: the races of two clients (or one client retrying) doing the same thing. None may answer 5xx.
 */
export async function identicalWriteBursts(
  h: ControlHarness,
  options: { seed: number; copies?: number },
): Promise<FuzzFigures> {
  const started = Date.now();
  const doc = (
    await h.app.inject({ method: 'GET', url: '/admin/api/openapi.json' })
  ).json() as OpenApiDocument;
  const ops = operationsOf(doc).filter((op) => op.method !== 'GET');
  const ids = await makeFixtures(h);
  const figures = newFigures(ops.length);
  for (const op of ops) {
    const rng = prng(hash(`${options.seed} burst ${op.method} ${op.path}`));
    let url = op.path;
    for (const param of op.pathParams) {
      url = url.replace(`{${param}}`, ids[collectionOf(op.path, param)]?.[0] ?? 'none');
    }
    const request: FuzzRequest = {
      method: op.method,
      url,
      headers: {
        authorization: `Bearer ${h.writeToken}`,
        ...(op.body && { 'content-type': 'application/json' }),
      },
      ...(op.body && { payload: JSON.stringify(withRealIds(validValue(op.body, rng), ids, rng)) }),
      label: `${op.method} ${op.path} [identical burst]`,
    };
    const answers = await Promise.all(Array.from({ length: options.copies ?? 6 }, () => send(h, request)));
    for (const res of answers) recordAnswer(figures, request, res);
  }
  figures.ms = Date.now() - started;
  return figures;
}

/** Fuzzes every operation of the harness's management API; resolves with the figures. */
export async function fuzzManagementApi(
  h: ControlHarness,
  options: { perOperation: number; seed: number; concurrency?: number },
): Promise<FuzzFigures> {
  const started = Date.now();
  const doc = (
    await h.app.inject({ method: 'GET', url: '/admin/api/openapi.json' })
  ).json() as OpenApiDocument;
  const ops = operationsOf(doc);
  const ids = await makeFixtures(h);
  const figures = newFigures(ops.length);
  const concurrency = options.concurrency ?? 8;
  for (const op of ops) {
    const requests = malformedRequests(op, options.perOperation, options.seed, ids, h.writeToken);
    for (let i = 0; i < requests.length; i += concurrency) {
      const batch = requests.slice(i, i + concurrency);
      const answers = await Promise.all(batch.map((r) => send(h, r)));
      for (const [j, res] of answers.entries()) recordAnswer(figures, batch[j]!, res);
    }
  }
  figures.ms = Date.now() - started;
  return figures;
}
