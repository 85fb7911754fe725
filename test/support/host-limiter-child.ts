/**
 * A stand-in gateway process for the host-limiter tests: counts through a HostLimiter on its IPC channel to the test
 * process (the primary). On `{ type: 'test:fire', n, limit, failureMode }` it sends n concurrent requests on one
 * counter and answers `{ type: 'test:fired', outcomes }`.
 */
import { HostLimiter } from '../../src/gateway/limiter/host-limiter.js';
import type { FailureMode } from '../../src/gateway/limiter/limiter.js';

const limiter = new HostLimiter({
  channel: {
    send: (message) => process.send?.(message) ?? false,
    on: (event, listener) => process.on(event, listener),
    off: (event, listener) => process.off(event, listener),
    get connected() {
      return process.connected;
    },
  },
  timeoutMs: 500,
});

interface Fire {
  type: 'test:fire';
  n: number;
  limit: number;
  failureMode: FailureMode;
}

process.on('message', async (message: unknown) => {
  const m = message as Partial<Fire>;
  if (m.type !== 'test:fire') return;
  const fire = m as Fire;
  const outcomes = await Promise.all(
    Array.from({ length: fire.n }, () =>
      limiter.consume(
        [
          {
            key: 'app:hits:minute',
            windowStart: 0,
            windowEnd: Number.POSITIVE_INFINITY,
            limit: fire.limit,
            delta: 1,
          },
        ],
        { mode: 'strict', failureMode: fire.failureMode, now: 1 },
      ),
    ),
  );
  process.send?.({ type: 'test:fired', outcomes: outcomes.map((o) => o.kind) });
});
process.send?.({ type: 'test:ready' });
