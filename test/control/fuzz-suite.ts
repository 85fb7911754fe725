/**
 * The fuzzer's figures, kept: 200 malformed requests per management operation (every operation of the OpenAPI
 * document) answer 0 × 5xx, and every 4xx has the one error shape. The requests are drawn from a fixed seed, so
 * a failure is reproducible; `npm run fuzz` runs more of them, with other seeds. The time limits are generous
 * for a loaded machine: alone, both databases' samples together take about 40 s. One test file per database
 * (fuzz-sqlite, fuzz-postgres), so the two run side by side.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DialectName } from '../../src/store/index.js';
import { type ControlHarness, startControl } from '../support/control.js';
import { fuzzManagementApi, identicalWriteBursts } from '../support/fuzzer.js';

export const perOperation = 200;

export function fuzzSuite(dialect: DialectName): void {
  describe(`fuzzing the management API on ${dialect}`, () => {
    // each test has a store of its own: what one creates (a required custom field) must not change the other
    let h: ControlHarness;
    beforeEach(async () => {
      h = await startControl(dialect);
    });
    afterEach(() => h.close());

    it(`${perOperation} malformed requests per operation: no 5xx, every 4xx in the one shape`, async () => {
      const f = await fuzzManagementApi(h, { perOperation, seed: 8 });
      console.info(
        `fuzz ${dialect}: ${f.sent} requests over ${f.operations} operations in ${f.ms} ms: ` +
          `${f.ok} 2xx, ${f.clientErrors} 4xx, ${f.serverErrors} 5xx, ${f.badShape} without the error shape; ` +
          `by status ${JSON.stringify(f.byStatus)}`,
      );
      expect(f.failures).toEqual([]);
      expect(f.serverErrors).toBe(0);
      expect(f.badShape).toBe(0);
      expect(f.operations).toBeGreaterThan(60);
      expect(f.sent).toBe(f.operations * perOperation);
      // most requests are refused, but enough pass validation to reach the handlers and the database
      expect(f.clientErrors).toBeGreaterThan(f.sent / 2);
      expect(f.ok).toBeGreaterThan(f.operations * 5);
    }, 600_000);

    it('identical writes sent at once (every write operation, 6 copies): no 5xx, every 4xx in the one shape', async () => {
      const f = await identicalWriteBursts(h, { seed: 8, copies: 6 });
      console.info(
        `identical bursts ${dialect}: ${f.sent} requests over ${f.operations} operations in ${f.ms} ms: ` +
          `${f.ok} 2xx, ${f.clientErrors} 4xx, ${f.serverErrors} 5xx; by status ${JSON.stringify(f.byStatus)}`,
      );
      expect(f.failures).toEqual([]);
      expect(f.operations).toBeGreaterThan(40);
      expect(f.ok).toBeGreaterThan(f.operations);
    }, 300_000);
  });
}
