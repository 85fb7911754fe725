/**
 * A call without credentials is told where the service expects them: the 401's message and `details.expected`
 * name the header or query parameter (issue 13: a partner's first failed call says what to fix).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestStore, dialects, freshStore } from '../support/stores.js';
import {
  Fixtures,
  type RunningGateway,
  type Upstream,
  call,
  startGateway,
  startUpstream,
} from './fixtures.js';

describe.each(dialects)('credentials_missing names what was expected (%s)', (dialect) => {
  let store: TestStore;
  let f: Fixtures;
  let upstream: Upstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    store = await freshStore(dialect);
    f = new Fixtures(store);
    upstream = await startUpstream('production');
    await f.service({ upstream: upstream.url, prefix: '/hdr', userKeyName: 'X-Weather-Key' });
    await f.service({ upstream: upstream.url, prefix: '/qry', location: 'query', userKeyName: 'user_key' });
    await f.service({
      upstream: upstream.url,
      prefix: '/pair',
      authMode: 'app_id_app_key',
      appIdName: 'X-App-Id',
      appKeyName: 'X-App-Key',
    });
    await f.service({ upstream: upstream.url, prefix: '/oa', authMode: 'oauth2' });
    gw = await startGateway({ store });
  });

  afterAll(async () => {
    await gw?.close();
    await upstream.close();
    await store.cleanup();
  });

  it('names the header, the query parameter, both names of a pair, or the bearer token', async () => {
    const cases: [string, { in: string; name: string }[], RegExp][] = [
      ['/hdr/x', [{ in: 'header', name: 'X-Weather-Key' }], /X-Weather-Key header/],
      ['/qry/x', [{ in: 'query', name: 'user_key' }], /user_key query parameter/],
      [
        '/pair/x',
        [
          { in: 'header', name: 'X-App-Id' },
          { in: 'header', name: 'X-App-Key' },
        ],
        /X-App-Id and X-App-Key headers/,
      ],
      ['/oa/x', [{ in: 'header', name: 'Authorization' }], /Authorization: Bearer/],
    ];
    for (const [path, expected, message] of cases) {
      const res = await call(`${gw.url}${path}`);
      expect(res.status, path).toBe(401);
      expect(res.json.error?.code).toBe('credentials_missing');
      expect(res.json.error?.message, path).toMatch(message);
      expect(res.json.error?.details, path).toEqual({ expected });
    }
  });
});
