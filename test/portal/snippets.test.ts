/** The snippets' credential placement for every authentication mode, and the path they call (issue 13). */
import { describe, expect, it } from 'vitest';
import { buildSnippets, firstGetPath } from '../../src/portal/snippets.js';

const base = {
  authMode: 'user_key' as const,
  credentialsLocation: 'header' as const,
  userKeyName: 'X-API-Key',
  appIdName: 'X-App-Id',
  appKeyName: 'X-App-Key',
  gatewayPathPrefix: '/weather',
  gatewayHost: '',
};
const common = {
  gatewayUrl: 'https://gw.example',
  tokenUrl: 'https://dev.example/oauth/token',
  appId: 'a1b2',
};

describe('snippets', () => {
  it('takes the first GET without path parameters, with the document server path', () => {
    const doc = {
      servers: [{ url: 'https://api.example/1.1' }],
      paths: { '/x': { post: {} }, '/items/{id}': { get: {} }, '/items': { get: {} } },
    };
    expect(firstGetPath(doc)).toBe('/1.1/items');
    expect(firstGetPath({ paths: { '/only/{id}': { get: {} } } })).toBe('/only/{id}');
    expect(firstGetPath(null)).toBe('/');
  });

  it('puts a user key in the query under the service name', () => {
    const s = buildSnippets({
      ...common,
      service: { ...base, credentialsLocation: 'query', userKeyName: 'api_key' },
      path: '/forecast',
      secret: 'trk_1',
    });
    expect(s.url).toBe('https://gw.example/weather/forecast?api_key=trk_1');
    expect(s.curl).toBe("curl -sS 'https://gw.example/weather/forecast?api_key=trk_1'");
    expect(s.withSecret).toBe(true);
  });

  it('sends the application id and key, with a placeholder when the key is not known', () => {
    const s = buildSnippets({ ...common, service: { ...base, authMode: 'app_id_app_key' }, path: '/f' });
    expect(s.curl).toContain("-H 'X-App-Id: a1b2'");
    expect(s.curl).toContain("-H 'X-App-Key: YOUR_KEY'");
    expect(s.python).toContain('headers={"X-App-Id": "a1b2", "X-App-Key": "YOUR_KEY"}');
    expect(s.withSecret).toBe(false);
  });

  it('asks for a token first for an oauth2 service', () => {
    const s = buildSnippets({ ...common, service: { ...base, authMode: 'oauth2' }, path: '/balance' });
    expect(s.curl).toContain("curl -sS -u 'a1b2:YOUR_CLIENT_SECRET' -d grant_type=client_credentials");
    expect(s.curl).toContain('-H "Authorization: Bearer $TOKEN"');
    expect(s.javascript).toContain('fetch("https://dev.example/oauth/token"');
    expect(s.python).toContain('auth=("a1b2", "YOUR_CLIENT_SECRET")');
    expect(s.placeholder).toBe('YOUR_CLIENT_SECRET');
  });

  it('quotes a shell word that holds a quote', () => {
    const s = buildSnippets({ ...common, service: { ...base, userKeyName: "X-K'ey" }, path: '/' });
    expect(s.curl).toContain(`-H 'X-K'\\''ey: YOUR_KEY'`);
  });
});
