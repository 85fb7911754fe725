import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, settingsTable } from '../../src/config/index.js';

describe('config', () => {
  it('has embedded defaults, frozen', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      databaseUrl: 'sqlite:./data/trellis.db',
      redisUrl: '',
      gatewayPort: 8080,
      controlPort: 3000,
      publicUrl: 'http://localhost:3000',
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reports every problem at once', () => {
    try {
      loadConfig({ TRELLIS_GATEWAY_PORT: '99999', TRELLIS_DEMO: 'perhaps', TRELLIS_REDIS_URL: 'not a url' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toHaveLength(3);
    }
  });

  it('lets flags override the environment', () => {
    expect(loadConfig({ TRELLIS_GATEWAY_PORT: '9000' }, { gatewayPort: 0 }).gatewayPort).toBe(0);
  });

  it('is documented in the README, setting by setting', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
    expect(readme).toContain(settingsTable());
  });
});
