/**
 * Vitest's global setup: before any test, make sure PostgreSQL, Redis and Chromium are there
 * (`scripts/test-services.sh` starts or installs what is missing, or stops with one line saying what to install),
 * so `npm test` is the whole test command on a fresh machine.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const script = fileURLToPath(new URL('../../scripts/test-services.sh', import.meta.url));
  try {
    execFileSync('bash', [script], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 600_000 });
  } catch {
    // the script said what is missing on stderr; a thrown error here stops vitest before any test runs
    throw new Error('the test services are not ready (see the line above)');
  }
}
