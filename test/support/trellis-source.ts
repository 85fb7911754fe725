/**
 * `bin/trellis.js` for tests: the same command run from the TypeScript sources (through tsx) instead of dist/, so
 * tests that need a real process test the code as it is, not the last build.
 * @example execFile(process.execPath, ['--import', 'tsx', trellisSourceEntry, 'migrate'])
 */
import { run } from '../../src/cli/main.js';

process.exitCode = await run(process.argv.slice(2));
