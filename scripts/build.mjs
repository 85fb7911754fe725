// `npm run build`: compiles src/ to dist/ with tsc (tsconfig.build.json), then copies what is not TypeScript —
// the faces' views and assets — beside the compiled modules, where they look for them (`new URL(…, import.meta.url)`).
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname } from 'node:path';

const require = createRequire(import.meta.url);
rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
  stdio: 'inherit',
});
// source-thread.mjs starts worker threads from the TypeScript sources under tsx; the built code never needs it
cpSync('src', 'dist', {
  recursive: true,
  filter: (path) => extname(path) !== '.ts' && !path.endsWith('source-thread.mjs'),
});
