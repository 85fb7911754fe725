/**
 * A `trellis` process for tests of applies run at once (test/cli/apply-concurrency.test.ts): the command's own
 * code (`run` of src/cli/main.ts), loaded first and then held until the test says go, so that two processes start
 * their apply within a millisecond of each other instead of a module load apart. On `{ type: 'test:run', args }`
 * it runs the command line and answers `{ type: 'test:ran', code, stdout, stderr }`.
 */
import { run } from '../../src/cli/main.js';

interface Run {
  type: 'test:run';
  args: string[];
}

process.on('message', async (message: unknown) => {
  const m = message as Partial<Run>;
  if (m.type !== 'test:run' || !Array.isArray(m.args)) return;
  let stdout = '';
  let stderr = '';
  const code = await run(m.args, { out: (t) => (stdout += t), err: (t) => (stderr += t) });
  process.send?.({ type: 'test:ran', code, stdout, stderr });
});
process.send?.({ type: 'test:ready' });
