// `npm run smoke:pack`: the package as a user gets it. Packs Trellis (`npm pack` builds dist/ through `prepare`),
// installs the tarball in an empty folder without dev dependencies, starts `npx trellis start` on its embedded
// defaults and calls the demo API through the gateway with the key it prints: the run fails unless that answers 200.
// Every step is bounded in time; everything it starts is stopped.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'trellis-pack-'));
const npm = (args, cwd, timeout) =>
  execFileSync('npm', args, {
    cwd,
    timeout,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    // better-sqlite3 compiles from source against the machine's Node headers (no download)
    env: { ...process.env, npm_config_nodedir: process.env.npm_config_nodedir ?? '/usr' },
  });

let child;
try {
  const started = Date.now();
  const tarball = npm(['pack', '--silent', '--pack-destination', work], root, 120_000)
    .trim()
    .split('\n')
    .pop();
  console.log(`packed ${tarball}`);
  const app = join(work, 'app');
  execFileSync('mkdir', [app]);
  writeFileSync(join(app, 'package.json'), '{"name":"trellis-smoke","private":true}\n');
  npm(
    ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', join(work, tarball)],
    app,
    600_000,
  );
  console.log(
    `installed in ${((Date.now() - started) / 1000).toFixed(0)} s (no dev dependencies, no TypeScript loader)`,
  );

  child = spawn('npx', ['--no-install', 'trellis', 'start', '--gateway-port', '0', '--control-port', '0'], {
    cwd: app,
    env: { ...process.env, TRELLIS_DEMO_UPSTREAM_PORT: '0', TRELLIS_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  const curl = await new Promise((resolveLine, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no demo curl line within 60 s:\n${out}`)), 60_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const line = out.match(/curl -H 'X-API-Key: (trk_\w+)' (http:\/\/\S+)/);
      if (line) {
        clearTimeout(timer);
        resolveLine({ key: line[1], url: line[2] });
      }
    });
    child.on('exit', (code) => reject(new Error(`trellis start exited with ${code}:\n${out}`)));
  });
  const res = await fetch(curl.url, {
    headers: { 'X-API-Key': curl.key },
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  console.log(`demo call through the installed package: ${res.status} ${body.slice(0, 120)}`);
  if (res.status !== 200) process.exitCode = 1;
} catch (err) {
  console.error(`pack smoke failed: ${err instanceof Error ? err.message : err}`);
  process.exitCode = 1;
} finally {
  if (child?.pid) {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {}
  }
  rmSync(work, { recursive: true, force: true });
}
