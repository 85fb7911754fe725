/** TRELLIS_OUTBOUND_ALLOW_HOSTS: host names, addresses and [IPv6] addresses, each optionally with a port. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';

describe('TRELLIS_OUTBOUND_ALLOW_HOSTS', () => {
  it('is empty by default: no host may be fetched from unless public', () => {
    expect(loadConfig({}).outboundAllowHosts).toEqual([]);
  });

  it('reads host names, addresses and ports, comma-separated, lower-cased', () => {
    const config = loadConfig({
      TRELLIS_OUTBOUND_ALLOW_HOSTS: ' IdP.internal, 10.1.2.3:8443,[fd00::1]:443 ,',
    });
    expect(config.outboundAllowHosts).toEqual(['idp.internal', '10.1.2.3:8443', '[fd00::1]:443']);
    expect(Object.isFrozen(config.outboundAllowHosts)).toBe(true);
  });

  it('refuses URLs, paths and wildcards, naming each', () => {
    expect(() =>
      loadConfig({ TRELLIS_OUTBOUND_ALLOW_HOSTS: 'http://idp.internal,idp.internal/jwks,*.internal' }),
    ).toThrow(ConfigError);
    const err = (() => {
      try {
        loadConfig({ TRELLIS_OUTBOUND_ALLOW_HOSTS: 'http://idp.internal,ok.internal' });
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems[0]).toContain('"http://idp.internal"');
    expect((err as ConfigError).problems[0]).not.toContain('ok.internal');
  });
});
