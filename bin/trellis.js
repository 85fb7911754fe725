#!/usr/bin/env node
// The `trellis` command runs its TypeScript sources through tsx (a dependency), so there is no build step.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../src/cli/main.ts');
process.exitCode = await run(process.argv.slice(2));
