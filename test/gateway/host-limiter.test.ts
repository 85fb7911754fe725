/**
 * Counters shared by the gateway processes of one host through the primary (no Redis): real child processes on
 * real IPC channels, the test process playing the cluster's primary.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HostLimiter, serveHostCounters } from '../../src/gateway/limiter/host-limiter.js';
import { MemoryLimiter } from '../../src/gateway/limiter/memory-limiter.js';
import { nextMessage } from '../support/child-message.js';

const childEntry = join(import.meta.dirname, '../support/host-limiter-child.ts');
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

/** A gateway-like process whose counters the test process holds. */
async function gatewayProcess(counters: MemoryLimiter): Promise<ChildProcess> {
  const child = fork(childEntry, { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  children.push(child);
  serveHostCounters(
    {
      send: (message, callback) => child.send(message, callback),
      on: (event, listener) => child.on(event, listener),
      isConnected: () => child.connected,
    },
    counters,
  );
  await nextMessage(child, 'test:ready');
  return child;
}

async function fire(child: ChildProcess, n: number, limit: number, failureMode: 'open' | 'closed') {
  const answer = nextMessage<{ outcomes: string[] }>(child, 'test:fired');
  child.send({ type: 'test:fire', n, limit, failureMode });
  return (await answer).outcomes;
}

const count = (outcomes: string[], kind: string) => outcomes.filter((o) => o === kind).length;

describe('host counters (the primary holds the counters of every gateway process)', () => {
  it('lets exactly the limit through across two processes firing at once', async () => {
    const counters = new MemoryLimiter();
    const [a, b] = await Promise.all([gatewayProcess(counters), gatewayProcess(counters)]);
    const [fromA, fromB] = await Promise.all([fire(a!, 60, 50, 'closed'), fire(b!, 60, 50, 'closed')]);
    expect(count(fromA, 'allowed') + count(fromB, 'allowed')).toBe(50);
    expect(count(fromA, 'exceeded') + count(fromB, 'exceeded')).toBe(70);
    expect(counters.peek({ key: 'app:hits:minute', windowStart: 0 })).toBe(50);
  });

  it('follows the failure mode when the primary does not answer', async () => {
    const silent = {
      connected: true,
      send: () => true, // the message goes nowhere: the primary is stuck
      on: () => undefined,
      off: () => undefined,
    };
    const failures: string[] = [];
    const limiter = new HostLimiter({
      channel: silent,
      timeoutMs: 50,
      onFailure: (f) => failures.push(f.failureMode),
    });
    const check = { key: 'k', windowStart: 0, windowEnd: 60_000, limit: 1, delta: 1 };
    const closed = await limiter.consume([check], { mode: 'strict', failureMode: 'closed', now: 1 });
    expect(closed.kind).toBe('unavailable');
    const open = await Promise.all([
      limiter.consume([check], { mode: 'strict', failureMode: 'open', now: 1 }),
      limiter.consume([check], { mode: 'strict', failureMode: 'open', now: 1 }),
    ]);
    // open: counted in this process alone, still within the limit there
    expect(open.map((o) => o.kind)).toEqual(['allowed', 'exceeded']);
    expect(failures).toEqual(['closed', 'open', 'open']);
  });

  it('refuses at once (closed) when the channel to the primary is gone', async () => {
    const gone = { connected: false, send: () => false, on: () => undefined, off: () => undefined };
    const limiter = new HostLimiter({ channel: gone, timeoutMs: 10_000 });
    const started = Date.now();
    const outcome = await limiter.consume([{ key: 'k', windowStart: 0, windowEnd: 1, limit: 5, delta: 1 }], {
      mode: 'strict',
      failureMode: 'closed',
      now: 0,
    });
    expect(outcome.kind).toBe('unavailable');
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
