/**
 * Login throttling that slows guessing without locking anyone out (issue 8, item 18): failures are counted per
 * (e-mail, client address); past a few, each further attempt from that pair waits a growing delay; the right
 * password works once the delay passed; another address is not held by an attacker's failures; behind a trusted
 * proxy the client address comes from `X-Forwarded-For`, from anyone else it is ignored. The clock is a
 * `ManualClock`: no test sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/kernel/index.js';
import { type Store, openStore } from '../../src/store/index.js';
import { type LoginClaim, createLoginThrottle, defaultThrottle } from '../../src/portal/index.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';
import { type PortalHarness, signUp, startPortal } from './portal-harness.js';
import type { WebAgent } from './web-agent.js';

const right = 'correct horse battery';

async function tryLogin(agent: WebAgent, email: string, password: string, path = '/login') {
  if (agent.csrf() === '') await agent.get(path);
  return agent.post(path, { email, password });
}

async function failTimes(agent: WebAgent, email: string, n: number, path = '/login') {
  for (let i = 0; i < n; i++) {
    const res = await tryLogin(agent, email, `wrong-${i}-password`, path);
    expect(res.statusCode).toBe(401);
  }
}

describe('the throttle itself', () => {
  let store: TestStore;
  beforeAll(async () => {
    store = await freshStore('sqlite');
  });
  afterAll(async () => {
    await store.cleanup();
  });

  const fail = async (claim: LoginClaim) => {
    expect(claim.allowed).toBe(true);
    if (claim.allowed) await claim.failed();
  };

  it('counts attempts being checked, so a burst at the start gets the free failures and no more', async () => {
    const throttle = createLoginThrottle({ db: store.db, clock: new ManualClock(0) }, 'developer');
    const claims = await Promise.all(
      Array.from({ length: 8 }, () => throttle.claim('burst@x.test', '192.0.2.1')),
    );
    expect(claims.filter((c) => c.allowed)).toHaveLength(5);
    for (const c of claims) if (c.allowed) await c.abandon();
    // abandoned attempts count nothing
    for (let i = 0; i < 5; i++) await fail(await throttle.claim('burst@x.test', '192.0.2.1'));
    expect(await throttle.claim('burst@x.test', '192.0.2.1')).toEqual({
      allowed: false,
      retryAfterSeconds: 1,
    });
  });

  it('forgets failures after their memory: the pair after a day, the address and the e-mail after an hour', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const throttle = createLoginThrottle({ db: store.db, clock }, 'admin', {
      perPair: { free: 2, firstDelayMs: 1000, maxDelayMs: 900_000, memoryMs: 86_400_000 },
      perAddress: { free: 3, firstDelayMs: 1000, maxDelayMs: 60_000, memoryMs: 3_600_000 },
      perEmail: { free: 100, firstDelayMs: 1000, maxDelayMs: 30_000, memoryMs: 3_600_000 },
    });
    for (const e of ['a@x.test', 'b@x.test', 'c@x.test']) await fail(await throttle.claim(e, '192.0.2.2'));
    expect(await throttle.claim('d@x.test', '192.0.2.2')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    // an hour later the address's three failures are forgotten: the next two e-mails go straight through
    clock.advance(3_600_001);
    await fail(await throttle.claim('e@x.test', '192.0.2.2'));
    await fail(await throttle.claim('f@x.test', '192.0.2.2'));
    // the pair remembers a day: two more failures of a@x.test make three, and the wait is 2 s
    await fail(await throttle.claim('a@x.test', '192.0.2.3'));
    await fail(await throttle.claim('a@x.test', '192.0.2.3'));
    clock.advance(1000);
    await fail(await throttle.claim('a@x.test', '192.0.2.3'));
    expect(await throttle.claim('a@x.test', '192.0.2.3')).toEqual({ allowed: false, retryAfterSeconds: 2 });
    // a day later they are forgotten: two failures are free again
    clock.advance(86_400_001);
    await fail(await throttle.claim('a@x.test', '192.0.2.3'));
    await fail(await throttle.claim('a@x.test', '192.0.2.3'));
  });
});

describe.each(dialects)('the throttle across processes (%s)', (dialect) => {
  let store: TestStore;
  let other: Store;
  beforeAll(async () => {
    store = await freshStore(dialect);
    // PostgreSQL: a second pool of connections, as another control process has; SQLite: the same file through one
    // connection (a process holds one), so only the throttles' own state is apart, as between two processes
    other = dialect === 'postgres' ? openStore(store.url, { poolSize: 5 }) : store;
  });
  afterAll(async () => {
    if (other !== store) await other.destroy();
    await store.cleanup();
  });

  it('lets the free attempts through once in all, however the burst is spread over the processes', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const throttles = [store, other].map((s) => createLoginThrottle({ db: s.db, clock }, 'developer'));
    const claims = await Promise.all(
      Array.from({ length: 12 }, (_, i) => throttles[i % 2]!.claim('spread@x.test', '192.0.2.9')),
    );
    // before: each process let its own five through, ten guesses checked at once
    expect(claims.filter((c) => c.allowed)).toHaveLength(5);
    for (const c of claims) if (c.allowed) await c.failed();
    clock.advance(1000);
    const next = await Promise.all(
      Array.from({ length: 6 }, (_, i) => throttles[i % 2]!.claim('spread@x.test', '192.0.2.9')),
    );
    expect(next.filter((c) => c.allowed)).toHaveLength(1);
  });

  it('takes a successful or abandoned attempt back from every count, and keeps a failed one', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 2));
    const [a, b] = [store, other].map((s) => createLoginThrottle({ db: s.db, clock }, 'admin'));
    const held = await a!.claim('back@x.test', '192.0.2.10');
    expect(held.allowed).toBe(true);
    // the attempt being checked counts in the other process too: four more are free, not five
    const others = await Promise.all(Array.from({ length: 5 }, () => b!.claim('back@x.test', '192.0.2.10')));
    expect(others.filter((c) => c.allowed)).toHaveLength(4);
    if (held.allowed) await held.succeeded();
    for (const c of others) if (c.allowed) await c.abandon();
    const after = await Promise.all(Array.from({ length: 6 }, () => a!.claim('back@x.test', '192.0.2.10')));
    expect(after.filter((c) => c.allowed)).toHaveLength(5);
  });
});

describe('login throttling without lock-out', () => {
  let h: PortalHarness;
  beforeAll(async () => {
    h = await startPortal();
  });
  afterAll(async () => {
    await h.close();
  });

  it('makes a pair wait a growing delay after five failures, then lets the right password in', async () => {
    await signUp(h, 'grow@acme.test', 'Grow');
    const me = h.agent({ remoteAddress: '198.51.100.10' });
    await failTimes(me, 'grow@acme.test', 5);
    // within the delay: 429 with Retry-After and the form's message, the password not even checked
    const held = await tryLogin(me, 'grow@acme.test', right);
    expect(held.statusCode).toBe(429);
    expect(held.headers['retry-after']).toBe('1');
    expect(held.body).toContain(
      'Too many attempts. Wait a moment, or reset your password. Try again in 1 second.',
    );
    expect(held.body).toContain('name="email"');
    // delays double: 1 s, 2 s, 4 s …
    const waits: string[] = [];
    for (let i = 0; i < 4; i++) {
      h.clock.advance(Number(held.headers['retry-after']) * 1000 * 2 ** i);
      expect((await tryLogin(me, 'grow@acme.test', `still-wrong-${i}`)).statusCode).toBe(401);
      waits.push(String((await tryLogin(me, 'grow@acme.test', right)).headers['retry-after']));
    }
    expect(waits).toEqual(['2', '4', '8', '16']);
    h.clock.advance(16_000);
    const in1 = await tryLogin(me, 'grow@acme.test', right);
    expect([in1.statusCode, in1.headers.location]).toEqual([303, '/apps']);
    // a success resets the pair: five failures are free again
    const again = h.agent({ remoteAddress: '198.51.100.10' });
    await failTimes(again, 'grow@acme.test', 5);
  });

  it('caps the delay at a quarter of an hour and never locks the right password out', async () => {
    await signUp(h, 'cap@acme.test', 'Cap');
    const me = h.agent({ remoteAddress: '198.51.100.11' });
    await failTimes(me, 'cap@acme.test', 5);
    let wait = 0;
    for (let i = 0; i < 14; i++) {
      const held = await tryLogin(me, 'cap@acme.test', right);
      expect(held.statusCode).toBe(429);
      wait = Number(held.headers['retry-after']);
      h.clock.advance(wait * 1000);
      expect((await tryLogin(me, 'cap@acme.test', `nope-${i}`)).statusCode).toBe(401);
    }
    expect(wait).toBe(15 * 60);
    h.clock.advance(15 * 60_000);
    expect((await tryLogin(me, 'cap@acme.test', right)).statusCode).toBe(303);
  });

  it("does not hold another address back because of an attacker's failures on the same e-mail", async () => {
    await signUp(h, 'victim@acme.test', 'Victim');
    const attacker = h.agent({ remoteAddress: '198.51.100.66' });
    await failTimes(attacker, 'victim@acme.test', 5);
    for (let i = 0; i < 5; i++)
      expect((await tryLogin(attacker, 'victim@acme.test', right)).statusCode).toBe(429);
    const victim = h.agent({ remoteAddress: '203.0.113.5' });
    const res = await tryLogin(victim, 'victim@acme.test', right);
    expect([res.statusCode, res.headers.location]).toEqual([303, '/apps']);
  });

  it('lets one attempt at a time through once delays apply, however many arrive together', async () => {
    await signUp(h, 'burst@acme.test', 'Burst');
    const me = h.agent({ remoteAddress: '198.51.100.12' });
    await failTimes(me, 'burst@acme.test', 5);
    h.clock.advance(1000);
    await me.get('/login');
    const statuses = await Promise.all(
      Array.from({ length: 6 }, (_, i) => me.post('/login', { email: 'burst@acme.test', password: `b${i}` })),
    );
    expect(statuses.map((r) => r.statusCode).sort()).toEqual([401, 429, 429, 429, 429, 429]);
  });

  it('ignores X-Forwarded-For when no proxy is trusted', async () => {
    await signUp(h, 'spoof@acme.test', 'Spoof');
    const guesser = h.agent({ remoteAddress: '198.51.100.13' });
    for (let i = 0; i < 5; i++) {
      await guesser.get('/login');
      const res = await guesser.post(
        '/login',
        { email: 'spoof@acme.test', password: `w${i}` },
        { headers: { 'x-forwarded-for': `203.0.113.${i + 1}` } },
      );
      expect(res.statusCode).toBe(401);
    }
    const held = await guesser.post(
      '/login',
      { email: 'spoof@acme.test', password: right },
      { headers: { 'x-forwarded-for': '203.0.113.99' } },
    );
    expect(held.statusCode).toBe(429);
  });

  it('throttles the console the same way: delays, no lock-out, other addresses free', async () => {
    const attacker = h.agent({ remoteAddress: '198.51.100.14' });
    await failTimes(attacker, h.adminEmail, 5, '/admin/login');
    expect((await tryLogin(attacker, h.adminEmail, h.adminPassword, '/admin/login')).statusCode).toBe(429);
    const admin = h.agent({ remoteAddress: '203.0.113.6' });
    expect((await tryLogin(admin, h.adminEmail, h.adminPassword, '/admin/login')).statusCode).toBe(303);
    h.clock.advance(1000);
    expect((await tryLogin(attacker, h.adminEmail, h.adminPassword, '/admin/login')).statusCode).toBe(303);
  });
});

describe.each(dialects)('login throttling behind a trusted proxy, on %s', (dialect) => {
  let h: PortalHarness;
  beforeAll(async () => {
    h = await startPortal(dialect, {
      trustedProxies: ['127.0.0.1', '10.0.0.0/8'],
      throttle: { ...defaultThrottle, perAddress: { ...defaultThrottle.perAddress, free: 8 } },
    });
  });
  afterAll(async () => {
    await h.close();
  });

  it('throttles two users behind the load balancer apart, by their X-Forwarded-For', async () => {
    await signUp(h, 'shared@acme.test', 'Shared');
    const one = h.agent({ headers: { 'x-forwarded-for': '203.0.113.1' } });
    const two = h.agent({ headers: { 'x-forwarded-for': '203.0.113.2, 10.0.0.7' } });
    await failTimes(one, 'shared@acme.test', 5);
    expect((await tryLogin(one, 'shared@acme.test', right)).statusCode).toBe(429);
    const res = await tryLogin(two, 'shared@acme.test', right);
    expect([res.statusCode, res.headers.location]).toEqual([303, '/apps']);
  });

  it('keeps a ceiling per address across e-mails, as delays', async () => {
    const stuffer = h.agent({ headers: { 'x-forwarded-for': '203.0.113.50' } });
    for (let i = 0; i < 8; i++)
      expect((await tryLogin(stuffer, `nobody${i}@acme.test`, 'password1')).statusCode).toBe(401);
    const held = await tryLogin(stuffer, 'nobody-else@acme.test', 'password1');
    expect([held.statusCode, held.headers['retry-after']]).toEqual([429, '1']);
    // another client behind the same balancer is not the stuffer
    await signUp(h, 'neighbour@acme.test', 'Neighbour');
    const neighbour = h.agent({ headers: { 'x-forwarded-for': '203.0.113.51' } });
    expect((await tryLogin(neighbour, 'neighbour@acme.test', right)).statusCode).toBe(303);
    h.clock.advance(1000);
    expect((await tryLogin(stuffer, 'nobody-else@acme.test', 'password1')).statusCode).toBe(401);
  });

  it('ignores X-Forwarded-For from a peer that is not trusted', async () => {
    await signUp(h, 'direct@acme.test', 'Direct');
    for (let i = 0; i < 5; i++) {
      const res = await tryLogin(
        h.agent({ remoteAddress: '198.51.100.20', headers: { 'x-forwarded-for': `203.0.113.${100 + i}` } }),
        'direct@acme.test',
        `w${i}`,
      );
      expect(res.statusCode).toBe(401);
    }
    const held = await tryLogin(
      h.agent({ remoteAddress: '198.51.100.20', headers: { 'x-forwarded-for': '203.0.113.200' } }),
      'direct@acme.test',
      right,
    );
    expect(held.statusCode).toBe(429);
  });
});
