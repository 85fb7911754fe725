/**
 * Fuzzes every operation of the management API on SQLite and PostgreSQL, more than the CI sample does
 * (test/control/fuzz-*.test.ts) and with any seed: `npm run fuzz -- --per-op 1000 --seed 42 --dialect postgres`.
 * Prints the figures (requests, 2xx, 4xx, 5xx, 4xx without the error shape) and exits 1 on any 5xx or shapeless 4xx.
 * Needs the test databases (PostgreSQL on 127.0.0.1:5432, or TRELLIS_TEST_POSTGRES_URL).
 */
import { parseArgs } from 'node:util';
import type { DialectName } from '../src/store/index.js';
import { startControl } from '../test/support/control.js';
import { fuzzManagementApi } from '../test/support/fuzzer.js';

const { values } = parseArgs({
  options: {
    'per-op': { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    dialect: { type: 'string', multiple: true, default: ['sqlite', 'postgres'] },
  },
});
const perOperation = Number(values['per-op']);
const seed = Number(values.seed);
if (!Number.isInteger(perOperation) || perOperation < 1 || !Number.isInteger(seed)) {
  console.error('usage: npm run fuzz -- [--per-op N] [--seed S] [--dialect sqlite|postgres]…');
  process.exit(2);
}

let failed = false;
for (const dialect of values.dialect as DialectName[]) {
  const h = await startControl(dialect);
  try {
    const f = await fuzzManagementApi(h, { perOperation, seed });
    console.log(
      `${dialect}: ${f.sent} requests over ${f.operations} operations (seed ${seed}) in ${f.ms} ms: ` +
        `${f.ok} 2xx, ${f.clientErrors} 4xx, ${f.serverErrors} 5xx, ${f.badShape} 4xx without the error shape`,
    );
    console.log(`  by status: ${JSON.stringify(f.byStatus)}`);
    for (const failure of f.failures) console.log(`  FAIL ${failure}`);
    if (f.serverErrors > 0 || f.badShape > 0) failed = true;
  } finally {
    await h.close();
  }
}
process.exit(failed ? 1 : 0);
