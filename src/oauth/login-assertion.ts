/**
 * The signed assertion with which a provider's own login page hands an end user back to Trellis during the
 * authorization-code flow. It is a JWT signed with HS256 under the service's login secret (RFC 7519, RFC 7518
 * §3.2), bound to one interaction, and short-lived:
 *
 * ```json
 * { "aud": "<Trellis issuer>", "sub": "<the user's id at the provider>", "interaction": "<uid>", "iat": …, "exp": … }
 * ```
 */
import { SignJWT, jwtVerify } from 'jose';
import type { Clock } from '../kernel/index.js';

/** Longest lifetime an assertion may claim: it is used within seconds of being made. */
export const MAX_ASSERTION_SECONDS = 300;

export interface LoginAssertionCheck {
  secret: string;
  /** The Trellis issuer (the assertion's audience). */
  issuer: string;
  /** The interaction the end user is in; an assertion for another one is refused. */
  interaction: string;
  clock: Clock;
}

export type LoginAssertionResult = { ok: true; subject: string } | { ok: false; reason: string };

/** Checks a login assertion: signature, audience, interaction, expiry (and that it is not too long-lived). */
export async function verifyLoginAssertion(
  assertion: string,
  check: LoginAssertionCheck,
): Promise<LoginAssertionResult> {
  try {
    const { payload } = await jwtVerify(assertion, new TextEncoder().encode(check.secret), {
      algorithms: ['HS256'],
      audience: check.issuer,
      currentDate: new Date(check.clock.now()),
      clockTolerance: 5,
      requiredClaims: ['sub', 'exp', 'iat'],
    });
    if (payload.interaction !== check.interaction)
      return { ok: false, reason: 'the assertion is for another sign-in' };
    if ((payload.exp ?? 0) - (payload.iat ?? 0) > MAX_ASSERTION_SECONDS) {
      return { ok: false, reason: `the assertion lives longer than ${MAX_ASSERTION_SECONDS} seconds` };
    }
    if (typeof payload.sub !== 'string' || payload.sub === '' || payload.sub.length > 255) {
      return { ok: false, reason: 'the assertion names no user' };
    }
    return { ok: true, subject: payload.sub };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : 'the assertion is not valid' };
  }
}

/**
 * Makes a login assertion: what a provider's login backend does (shown here for tests and the docs).
 * @example const assertion = await signLoginAssertion({ secret, issuer, interaction, subject: 'user-42' })
 */
export async function signLoginAssertion(input: {
  secret: string;
  issuer: string;
  interaction: string;
  subject: string;
  nowSeconds?: number;
  ttlSeconds?: number;
}): Promise<string> {
  const now = input.nowSeconds ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ interaction: input.interaction })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setAudience(input.issuer)
    .setSubject(input.subject)
    .setIssuedAt(now)
    .setExpirationTime(now + (input.ttlSeconds ?? 120))
    .sign(new TextEncoder().encode(input.secret));
}
