/**
 * One authorization code, or one refresh token, sent by several token requests at the same moment (a replayed
 * code, a client retrying, an attacker racing the client): exactly one request gets tokens, every other one gets
 * `invalid_grant` (RFC 6749 §4.1.2: a code is used once; §10.4 and RFC 9700 §4.14.2: a rotated refresh token
 * once), and — as for a reuse one after the other — the grant is revoked, so the winner's tokens stop working
 * too. Real sockets to the control server; on PostgreSQL the requests really run side by side on a pool.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/events/index.js';
import {
  generateLoginSecret,
  updateClientOAuthSettings,
  updateServiceOAuthSettings,
} from '../../src/oauth/index.js';
import { dialects } from '../support/stores.js';
import { type OAuthWorld, authorizationCodeOverHttp, startOAuthWorld, tokenRequest } from './harness.js';

/** Token requests sent at once with the same code or refresh token. */
const RACERS = 8;
/** Codes (and refresh tokens) raced per test: one round may happen to serialise. */
const ROUNDS = 3;

const loginUrl = 'http://127.0.0.1:9/login';
const redirectUri = 'http://127.0.0.1:9/callback';

type TokenAnswer = Awaited<ReturnType<typeof tokenRequest>>;

describe.each(dialects)('one code or refresh token redeemed by concurrent requests on %s', (dialect) => {
  let world: OAuthWorld;
  let loginSecret: string;

  beforeAll(async () => {
    world = await startOAuthWorld(dialect);
    await updateServiceOAuthSettings(world.deps, systemActor, world.service.id, {
      loginUrl,
      refreshTokenTtl: 3600,
    });
    loginSecret = (await generateLoginSecret(world.deps, systemActor, world.server.sealer, world.service.id))
      .loginSecret;
    await updateClientOAuthSettings(world.deps, systemActor, world.app.id, { redirectUris: [redirectUri] });
  });

  afterAll(async () => {
    await world?.close();
  });

  const newCode = () =>
    authorizationCodeOverHttp(world, {
      loginSecret,
      loginUrl,
      redirectUri,
      subject: 'alice@example.org',
      scope: 'search',
    });

  const race = (body: Record<string, string>) =>
    Promise.all(Array.from({ length: RACERS }, () => tokenRequest(world, body)));

  async function introspect(token: string): Promise<boolean> {
    const basic = Buffer.from(`${world.app.clientId}:${world.app.clientSecret}`).toString('base64');
    const res = await fetch(`${world.issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { active: boolean }).active;
  }

  /** What one round came to: how many got tokens, and the errors of the others. */
  function outcome(answers: TokenAnswer[]) {
    const winners = answers.filter((a) => a.status === 200);
    const losers = answers.filter((a) => a.status !== 200);
    return {
      issued: winners.length,
      refused: losers.map((a) => `${a.status} ${String(a.body.error)}`),
      winner: winners[0]?.body,
    };
  }

  const refusedAll = Array.from({ length: RACERS - 1 }, () => '400 invalid_grant');

  /** The grant of a reused code or refresh token is revoked: the winner's tokens are dead as well. */
  async function expectGrantRevoked(winner: Record<string, unknown> | undefined) {
    expect(await introspect(String(winner?.access_token))).toBe(false);
    const again = await tokenRequest(world, {
      grant_type: 'refresh_token',
      refresh_token: String(winner?.refresh_token),
    });
    expect(again).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  }

  it('issues tokens for one authorization code once', async () => {
    const rounds = [];
    for (let round = 0; round < ROUNDS; round++) {
      const { code, codeVerifier } = await newCode();
      const answers = await race({
        grant_type: 'authorization_code',
        code,
        code_verifier: codeVerifier,
        redirect_uri: redirectUri,
      });
      rounds.push(outcome(answers));
    }
    expect(rounds.map((r) => r.issued)).toEqual(Array.from({ length: ROUNDS }, () => 1));
    for (const r of rounds) {
      expect(r.refused).toEqual(refusedAll);
      expect(r.winner).toMatchObject({ token_type: 'Bearer', scope: 'search' });
      await expectGrantRevoked(r.winner);
    }
  });

  it('rotates one refresh token once', async () => {
    const rounds = [];
    for (let round = 0; round < ROUNDS; round++) {
      const { code, codeVerifier } = await newCode();
      const first = await tokenRequest(world, {
        grant_type: 'authorization_code',
        code,
        code_verifier: codeVerifier,
        redirect_uri: redirectUri,
      });
      expect(first.status).toBe(200);
      const answers = await race({
        grant_type: 'refresh_token',
        refresh_token: String(first.body.refresh_token),
      });
      rounds.push(outcome(answers));
    }
    expect(rounds.map((r) => r.issued)).toEqual(Array.from({ length: ROUNDS }, () => 1));
    for (const r of rounds) {
      expect(r.refused).toEqual(refusedAll);
      expect(r.winner?.refresh_token).toBeTruthy();
      await expectGrantRevoked(r.winner);
    }
  });

  it('still rotates a refresh token used once, and refuses it the second time', async () => {
    const { code, codeVerifier } = await newCode();
    const first = await tokenRequest(world, {
      grant_type: 'authorization_code',
      code,
      code_verifier: codeVerifier,
      redirect_uri: redirectUri,
    });
    const refreshed = await tokenRequest(world, {
      grant_type: 'refresh_token',
      refresh_token: String(first.body.refresh_token),
    });
    expect(refreshed.status).toBe(200);
    expect(await introspect(String(refreshed.body.access_token))).toBe(true);
    const next = await tokenRequest(world, {
      grant_type: 'refresh_token',
      refresh_token: String(refreshed.body.refresh_token),
    });
    expect(next.status).toBe(200);
    expect(await introspect(String(next.body.access_token))).toBe(true);
    const reused = await tokenRequest(world, {
      grant_type: 'refresh_token',
      refresh_token: String(first.body.refresh_token),
    });
    expect(reused).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });
});
