/**
 * Issue 11, certification evidence: a partner uploads an image per manual item of a running run from the portal;
 * its type is told by its bytes (a renamed text file is 415), its size bounded (413), it is stored in the database
 * and served only to the account's users (another account gets 404) and to the provider, with its content type,
 * nosniff and a restrictive CSP. The provider reviews (a rejection says why), only the latest upload of an item,
 * and the last acceptance passes the run. On SQLite and PostgreSQL, through the composed control server.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEventPayload } from '../../src/events/index.js';
import { faultSentences, imageTypeOf } from '../../src/golive/index.js';
import type { WebAgent } from '../portal/web-agent.js';
import { type Programme, startProgramme } from '../programmes/programme-harness.js';
import { dialects } from '../support/stores.js';
import { makePng, uploadFromPortal } from './evidence-fixtures.js';
import { makeService, type TestService } from './golive-harness.js';

const png = makePng(8, 6);

describe('image types are told by their bytes', () => {
  it('knows PNG, JPEG, GIF and WebP signatures and nothing else', () => {
    expect(imageTypeOf(png)).toBe('image/png');
    expect(imageTypeOf(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]))).toBe('image/jpeg');
    expect(imageTypeOf(Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1'))).toBe('image/gif');
    expect(imageTypeOf(Buffer.from('RIFF\x24\x00\x00\x00WEBPVP8 ', 'latin1'))).toBe('image/webp');
    expect(imageTypeOf(Buffer.from('RIFF\x24\x00\x00\x00WAVEfmt ', 'latin1'))).toBeNull();
    expect(imageTypeOf(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeNull();
    expect(imageTypeOf(Buffer.from('just text, renamed logo.png'))).toBeNull();
    expect(imageTypeOf(Buffer.alloc(0))).toBeNull();
  });
});

describe('the plan in plain words', () => {
  it('says which calls get which fault', () => {
    const faults = {
      rateLimitEvery: 1,
      retryAfterSeconds: 4,
      serverErrorEvery: 2,
      unavailableEvery: 11,
      slowEvery: 21,
      slowMs: 800,
      expiredTokenEvery: 0,
    };
    const plan = { checks: [], faults, manualItems: [], windowMinutes: 30, minCalls: 20, autoApprove: false };
    expect(faultSentences(plan)).toEqual([
      'every call answers 429 Too Many Requests with Retry-After: 4',
      'every 2nd call answers 500 Internal Server Error',
      'every 11th call answers 503 Service Unavailable',
      'every 21st call is answered 800 ms late',
    ]);
  });
});

describe.each(dialects)('certification evidence on %s', (dialect) => {
  let p: Programme;
  let svc: TestService;
  let shop: WebAgent;
  let other: WebAgent;
  let appId = '';
  let otherAppId = '';
  let runId = '';
  let firstId = '';

  async function signUp(org: string, email: string): Promise<{ agent: WebAgent; appId: string }> {
    const agent = p.browser();
    await agent.get('/signup');
    await agent.post('/signup', { organization: org, name: org, email, password: 'correct horse battery' });
    await agent.get(`/apps/new?service=${svc.id}`);
    const created = await agent.submit('/apps/new', {
      serviceId: svc.id,
      planId: svc.planId,
      name: 'Checkout',
    });
    return { agent, appId: /\/apps\/(app_[a-z0-9]+)/.exec(created.location)![1]! };
  }

  const evidenceOfRun = async () =>
    (
      await p.api<{
        data: { id: string; itemKey: string; reviewState: string; latest: boolean; size: number }[];
      }>('GET', `/certification/runs/${runId}/evidence`)
    ).data;

  beforeAll(async () => {
    p = await startProgramme(dialect);
    svc = await makeService(p, 'payments', { upstreamSandbox: p.upstream.url });
    await p.api('PUT', `/services/${svc.id}/certification-plan`, {
      checks: [],
      manualItems: [
        {
          key: 'logo',
          title: 'Our logo in your checkout',
          description: 'As your users see it.',
          required: true,
        },
        { key: 'outage', title: 'What your user sees when we are down', required: false },
      ],
      minCalls: 0,
    });
    ({ agent: shop, appId } = await signUp('Shop Co', 'sam@shop.test'));
    ({ agent: other, appId: otherAppId } = await signUp('Other Co', 'olga@other.test'));
  });
  afterAll(() => p.close());

  it('the partner reads the plan in plain words and starts a run', async () => {
    const page = await shop.get(`/apps/${appId}/certification`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Our logo in your checkout');
    expect(page.body).toContain('What your user sees when we are down</strong> (optional)');
    const started = await shop.submit(`/apps/${appId}/certification/start`, {});
    expect(started.posted).toBe(303);
    expect(started.body).toContain('Your certification run started');
    runId = /data-run="(crun_[a-z0-9]+)"/.exec(started.body)![1]!;
    expect(started.body).toContain('data-testid="upload-logo"');
    expect(started.body).toContain('enctype="multipart/form-data"');
  });

  it('stores a real PNG, checked by its bytes, pending review', async () => {
    await shop.get(`/apps/${appId}/certification`);
    const res = await uploadFromPortal(p, shop, appId, runId, 'logo', {
      filename: 'checkout.png',
      type: 'image/png',
      bytes: png,
    });
    expect(res.statusCode, res.body).toBe(303);
    const list = await evidenceOfRun();
    expect(list).toMatchObject([{ itemKey: 'logo', reviewState: 'pending', latest: true, size: png.length }]);
    firstId = list[0]!.id;
    const one = await p.api<{ sha256: string; contentType: string }>(
      'GET',
      `/certification/evidence/${firstId}`,
    );
    expect(one).toMatchObject({
      contentType: 'image/png',
      sha256: createHash('sha256').update(png).digest('hex'),
    });
    const page = await shop.get(`/apps/${appId}/certification`);
    expect(page.body).toContain('Your image was uploaded');
    expect(page.body).toContain(`/apps/${appId}/certification/evidence/${firstId}`);
  });

  it('refuses a renamed text file (415), a file over the limit (413), an unknown item (404), a forged form (403)', async () => {
    await shop.get(`/apps/${appId}/certification`);
    const text = await uploadFromPortal(p, shop, appId, runId, 'logo', {
      filename: 'logo.png',
      type: 'image/png',
      bytes: Buffer.from('this is a text file, renamed logo.png\n'.repeat(20)),
    });
    expect(text.statusCode).toBe(415);
    expect(text.body).toContain('The file is not a PNG, JPEG, WebP or GIF image');
    // a PNG signature followed by more than the 2 MB default
    const big = Buffer.concat([png, Buffer.alloc(2 * 1_048_576)]);
    const large = await uploadFromPortal(p, shop, appId, runId, 'logo', {
      filename: 'huge.png',
      type: 'image/png',
      bytes: big,
    });
    expect(large.statusCode).toBe(413);
    expect(large.body).toContain('The image is larger than 2 MB');
    const unknown = await uploadFromPortal(p, shop, appId, runId, 'favicon', {
      filename: 'f.png',
      type: 'image/png',
      bytes: png,
    });
    expect(unknown.statusCode).toBe(404);
    const forged = await uploadFromPortal(
      p,
      shop,
      appId,
      runId,
      'logo',
      { filename: 'a.png', type: 'image/png', bytes: png },
      'not-the-token',
    );
    expect(forged.statusCode).toBe(403);
    // another account cannot upload into this run, even with a valid form of its own
    await other.get(`/apps/${otherAppId}/certification`);
    const intruder = await uploadFromPortal(p, other, appId, runId, 'logo', {
      filename: 'a.png',
      type: 'image/png',
      bytes: png,
    });
    expect(intruder.statusCode).toBe(404);
    expect((await evidenceOfRun()).length).toBe(1);
  });

  it('serves the image to the account with its type, nosniff and a restrictive CSP; another account gets 404', async () => {
    const mine = await shop.get(`/apps/${appId}/certification/evidence/${firstId}`);
    expect(mine.statusCode).toBe(200);
    expect(mine.headers['content-type']).toBe('image/png');
    expect(mine.headers['x-content-type-options']).toBe('nosniff');
    expect(String(mine.headers['content-security-policy'])).toContain("default-src 'none'");
    expect(String(mine.headers['content-security-policy'])).toContain('sandbox');
    expect(mine.rawPayload.equals(png)).toBe(true);
    for (const url of [
      `/apps/${appId}/certification/evidence/${firstId}`,
      `/apps/${otherAppId}/certification/evidence/${firstId}`,
    ]) {
      const theirs = await other.get(url);
      expect(theirs.statusCode, url).toBe(404);
      expect(theirs.rawPayload.equals(png)).toBe(false);
    }
    const anonymous = await p.browser().get(`/apps/${appId}/certification/evidence/${firstId}`);
    expect(anonymous.statusCode).toBe(303);
    const provider = await p.apiRaw('GET', `/certification/evidence/${firstId}/content`);
    expect([provider.statusCode, provider.headers['content-type']]).toEqual([200, 'image/png']);
    expect(provider.headers['x-content-type-options']).toBe('nosniff');
    expect(provider.rawPayload.equals(png)).toBe(true);
    const missing = await p.apiRaw('GET', '/certification/evidence/cev_0000000000000000000000000x/content');
    expect([missing.statusCode, missing.json().error.code]).toEqual([404, 'not_found']);
  });

  it('the provider rejects saying why, the partner reads it and uploads again; only the latest is reviewed', async () => {
    const bare = await p.apiRaw('POST', `/certification/evidence/${firstId}/review`, {
      decision: 'rejected',
    });
    expect([bare.statusCode, bare.json().error.code]).toEqual([400, 'validation_failed']);
    const bad = await p.apiRaw('POST', `/certification/evidence/${firstId}/review`, { decision: 'maybe' });
    expect(bad.statusCode).toBe(400);
    const rejected = await p.api<{ reviewState: string; reviewComment: string }>(
      'POST',
      `/certification/evidence/${firstId}/review`,
      { decision: 'rejected', comment: 'The logo is cut off at the top.' },
    );
    expect(rejected).toMatchObject({
      reviewState: 'rejected',
      reviewComment: 'The logo is cut off at the top.',
    });
    const page = await shop.get(`/apps/${appId}/certification`);
    expect(page.body).toContain('The provider says: The logo is cut off at the top.');
    const again = await uploadFromPortal(p, shop, appId, runId, 'logo', {
      filename: 'checkout-2.png',
      type: 'image/png',
      bytes: makePng(12, 9, [200, 40, 40]),
    });
    expect(again.statusCode).toBe(303);
    const stale = await p.apiRaw('POST', `/certification/evidence/${firstId}/review`, {
      decision: 'accepted',
    });
    expect([stale.statusCode, stale.json().error.code]).toEqual([409, 'invalid_state']);
    const list = await evidenceOfRun();
    expect(list.map((e) => [e.reviewState, e.latest])).toEqual([
      ['rejected', false],
      ['pending', true],
    ]);
  });

  it('the last acceptance passes the run; evidence is closed afterwards; events match the catalogue', async () => {
    const latest = (await evidenceOfRun()).find((e) => e.latest)!;
    await p.api('POST', `/certification/evidence/${latest.id}/review`, { decision: 'accepted' });
    const page = await shop.get(`/apps/${appId}/certification`);
    expect(/data-testid="run-state">([a-z]+)</.exec(page.body)?.[1]).toBe('passed');
    expect(page.body).toContain('Run certification again');
    await shop.get(`/apps/${appId}/certification`);
    const late = await uploadFromPortal(p, shop, appId, runId, 'outage', {
      filename: 'down.png',
      type: 'image/png',
      bytes: png,
    });
    expect(late.statusCode).toBe(409);
    const review = await p.apiRaw('POST', `/certification/evidence/${latest.id}/review`, {
      decision: 'rejected',
      comment: 'x',
    });
    expect([review.statusCode, review.json().error.code]).toEqual([409, 'invalid_state']);
    const rows = await p.store.db
      .selectFrom('events')
      .select(['type', 'payload'])
      .where('type', 'like', 'certification.%')
      .orderBy('seq')
      .execute();
    expect(rows.map((r) => r.type)).toEqual([
      'certification.started',
      'certification.evidence_uploaded',
      'certification.evidence_reviewed',
      'certification.evidence_uploaded',
      'certification.evidence_reviewed',
      'certification.passed',
    ]);
    for (const r of rows) expect(checkEventPayload(r.type, JSON.parse(r.payload))).toEqual([]);
  });

  it('a new run with a check: the report card shows its verdict and advice as judged; past runs stay readable', async () => {
    await p.api('PUT', `/services/${svc.id}/certification-plan`, {
      checks: [{ kind: 'retry_after', required: true }],
      faults: { rateLimitEvery: 3, retryAfterSeconds: 2 },
      manualItems: [{ key: 'error-page', title: 'What your user sees on a 503', required: true }],
      minCalls: 0,
    });
    await shop.get(`/apps/${appId}/certification`);
    const again = await shop.submit(`/apps/${appId}/certification/start`, {});
    expect(again.posted).toBe(303);
    const secondId = /data-run="(crun_[a-z0-9]+)"/.exec(again.body)![1]!;
    expect(secondId).not.toBe(runId);
    expect(again.body).toContain('every 3rd call answers 429 Too Many Requests with Retry-After: 2');
    // while it runs, its upload forms are there whichever run's card is read
    const reading = await shop.get(`/apps/${appId}/certification?run=${runId}`);
    expect(reading.body).toContain(`data-run="${runId}"`);
    expect(reading.body).toContain('data-testid="upload-error-page"');
    const judged = await p.api<{
      state: string;
      results: { kind: string; passed: boolean | null; advice: string }[];
    }>('POST', `/certification-runs/${secondId}/evaluate`, {});
    const check = judged.results.find((r) => r.kind === 'retry_after')!;
    const page = await shop.get(`/apps/${appId}/certification`);
    const line = /data-testid="check-retry_after">([\s\S]*?)<\/div>/.exec(page.body)![1]!;
    expect(line).toContain('Waits for Retry-After');
    expect(line).toContain(
      check.passed === true ? '>passed<' : check.passed === false ? '>failed<' : '>waiting<',
    );
    if (check.advice) expect(line).toContain(check.advice.replaceAll("'", '&#39;').replaceAll('"', '&quot;'));
    // both runs are listed; the first one's card is still there, and another account cannot read it
    expect(page.body).toContain(`/apps/${appId}/certification?run=${runId}`);
    const old = await shop.get(`/apps/${appId}/certification?run=${runId}`);
    expect(old.body).toContain(`data-run="${runId}"`);
    expect(old.body).toContain('replaced: The logo is cut off at the top.');
    expect((await other.get(`/apps/${otherAppId}/certification?run=${runId}`)).statusCode).toBe(404);
  });
});
