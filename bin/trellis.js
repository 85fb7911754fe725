#!/usr/bin/env node
// The `trellis` command runs the compiled code in dist/ (`npm run build`; `npm ci` in a checkout builds it through
// the `prepare` script, and the published package ships it). No TypeScript loader at run time.
let main;
try {
  main = await import('../dist/cli/main.js');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/cli/main.js')) throw err;
  process.stderr.write('trellis: dist/ is missing; run `npm run build` first\n');
  process.exit(1);
}
process.exitCode = await main.run(process.argv.slice(2));
