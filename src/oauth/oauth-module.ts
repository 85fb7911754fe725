/**
 * Mounts the authorization server on the control server:
 *
 * - `/oauth/*`: oidc-provider's endpoints (authorize, token, revocation, introspection, JWKS, discovery);
 * - `/oauth/interaction/:uid…`: the end user's way through the authorization-code flow — off to the service's
 *   login page, back with a signed assertion, then the consent page;
 * - `/.well-known/oauth-authorization-server/oauth`: the metadata where RFC 8414 §3.1 puts it for an issuer
 *   with a path.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { getPortalSettings } from '../access/index.js';
import { getService } from '../catalog/index.js';
import { type ControlApp, type ControlDeps, changeDeps } from '../control/index.js';
import { systemClock } from '../kernel/index.js';
import {
  type AuthorizationServerDeps,
  type BuiltProvider,
  OAUTH_PATH,
  buildProvider,
  errorPage,
} from './authorization-server.js';
import { clientProperties, clientString, resourceOf } from './clients.js';
import { consentPageCsp, renderConsentPage } from './consent-page.js';
import { type Sealer, createSealer } from './key-encryption.js';
import { verifyLoginAssertion } from './login-assertion.js';
import { deleteExpiredModels, deleteExpiredRevocations, findServiceSettings } from './oauth.store.js';
import { loginSecretOf } from './oauth-settings.js';
import { type ScopeInfo, planScopes } from './scopes.js';
import { ensureSigningKeys, keySetVersion, loadCookieKeys, rotateSigningKeys } from './signing-keys.js';
import { TokenCounter } from './token-counter.js';

export interface OAuthModuleOptions {
  /** How often a control process checks whether the signing keys changed (another process rotated). */
  keyCheckMs?: number;
  /** How often token counts are written. */
  counterFlushMs?: number;
  /** How often expired grants, codes, sessions and revocations are deleted. Default 10 minutes. */
  sweepMs?: number;
  /** Called with the running server (tests rotate keys and flush counts through it). */
  onReady?: (server: OAuthServer) => void;
}

/** The running authorization server of one control process. */
export interface OAuthServer {
  readonly issuer: string;
  readonly sealer: Sealer;
  readonly counter: TokenCounter;
  /** The provider answering now. */
  provider(): Provider;
  /** Rotates the signing keys and starts signing with the new current key at once. */
  rotateKeys(options?: {
    retiredKeySeconds?: number;
  }): Promise<{ current: string; next: string; retired: string[] }>;
  /** Rebuilds the provider when the keys in the database changed. */
  reloadKeysIfChanged(): Promise<boolean>;
}

/** The issuer identifier of a control server: its public URL and the mount path. */
export function issuerOf(publicUrl: string): string {
  return publicUrl.replace(/\/+$/, '') + OAUTH_PATH;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Hands a request to oidc-provider as if it were mounted at /oauth (it reads the mount path from originalUrl). */
function passTo(handler: Handler, req: FastifyRequest, reply: FastifyReply, url = req.raw.url ?? '/'): void {
  reply.hijack();
  const raw = req.raw as IncomingMessage & { originalUrl?: string };
  raw.originalUrl = url;
  raw.url = url.slice(OAUTH_PATH.length) || '/';
  handler(raw, reply.raw);
}

function sendPage(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply
    .status(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', consentPageCsp)
    .header('x-frame-options', 'DENY')
    .send(html);
}

const scopeDescriptions: Record<string, ScopeInfo> = {
  openid: { name: 'openid', friendlyName: 'Know who you are', description: 'Your user identifier.' },
};

/**
 * The OAuth control module. Add it to `controlModules` in src/cli/compose.ts.
 * @example buildControlApp(deps, { modules: [oauthControlModule()] })
 */
export function oauthControlModule(options: OAuthModuleOptions = {}) {
  return async function oauth(app: ControlApp, deps: ControlDeps): Promise<void> {
    const db = deps.store.db;
    const sealer = createSealer(deps.config.oauthKeySecret);
    const issuer = issuerOf(deps.config.publicUrl);
    const logger = app.log;
    if (!sealer.encrypts) {
      logger.warn({}, 'oauth: TRELLIS_OAUTH_KEY_SECRET is empty; signing keys are stored unencrypted');
    }
    await ensureSigningKeys(db, sealer, systemClock);
    const cookieKeys = await loadCookieKeys(db, sealer, systemClock);
    const counter = new TokenCounter(
      db,
      deps.clock,
      (err) => logger.error({ err }, 'oauth: cannot write token counts; retrying'),
      options.counterFlushMs ?? 1000,
    );
    const serverDeps: AuthorizationServerDeps = {
      db,
      changes: changeDeps(deps),
      sealer,
      issuer,
      counter,
      logger,
    };

    let built: BuiltProvider & { handler: Handler } = await withHandler(await buildProvider(serverDeps));
    async function withHandler(b: BuiltProvider) {
      return { ...b, handler: b.provider.callback() as Handler };
    }
    let reloading: Promise<boolean> | null = null;
    const reloadKeysIfChanged = (): Promise<boolean> => {
      reloading ??= (async () => {
        try {
          if ((await keySetVersion(db)) === built.keyVersion) return false;
          built = await withHandler(await buildProvider(serverDeps));
          return true;
        } finally {
          reloading = null;
        }
      })();
      return reloading;
    };
    const keyTimer = setInterval(() => {
      reloadKeysIfChanged().catch((err: unknown) =>
        logger.error({ err }, 'oauth: cannot reload signing keys'),
      );
    }, options.keyCheckMs ?? 5000);
    keyTimer.unref();
    // expired grants, codes, sessions and revocations of tokens that have expired anyway are swept away
    const sweepTimer = setInterval(() => {
      const nowIso = new Date(systemClock.now()).toISOString();
      Promise.all([deleteExpiredModels(db, nowIso), deleteExpiredRevocations(db, nowIso)]).catch(
        (err: unknown) => logger.warn({ err }, 'oauth: cannot sweep expired rows'),
      );
    }, options.sweepMs ?? 600_000);
    sweepTimer.unref();
    app.addHook('onClose', async () => {
      clearInterval(keyTimer);
      clearInterval(sweepTimer);
      await counter.close();
    });

    const server: OAuthServer = {
      issuer,
      sealer,
      counter,
      provider: () => built.provider,
      async rotateKeys(rotation = {}) {
        const result = await rotateSigningKeys(
          changeDeps(deps),
          { type: 'system', id: null },
          sealer,
          rotation,
        );
        await reloadKeysIfChanged();
        return result;
      },
      reloadKeysIfChanged,
    };
    options.onReady?.(server);

    const csrfOf = (uid: string) =>
      createHmac('sha256', cookieKeys[0] ?? '')
        .update(`consent:${uid}`)
        .digest('base64url');
    const csrfMatches = (uid: string, given: unknown) => {
      if (typeof given !== 'string') return false;
      const a = Buffer.from(csrfOf(uid));
      const b = Buffer.from(given);
      return a.length === b.length && timingSafeEqual(a, b);
    };

    // oidc-provider's own endpoints: it parses its bodies itself, so fastify must leave the stream alone
    await app.register(
      async (scope) => {
        scope.removeAllContentTypeParsers();
        scope.addContentTypeParser('*', (_req, _payload, done) => done(null));
        scope.all('/', { schema: { hide: true } }, (req, reply) => passTo(built.handler, req, reply));
        scope.all('/*', { schema: { hide: true } }, (req, reply) => passTo(built.handler, req, reply));
      },
      { prefix: OAUTH_PATH },
    );

    // RFC 8414 §3.1: for issuer https://host/oauth the metadata is at /.well-known/oauth-authorization-server/oauth
    app.get('/.well-known/oauth-authorization-server/oauth', { schema: { hide: true } }, (req, reply) =>
      passTo(built.handler, req, reply, `${OAUTH_PATH}/.well-known/openid-configuration`),
    );
    app.get(
      `${OAUTH_PATH}/.well-known/oauth-authorization-server`,
      { schema: { hide: true } },
      (req, reply) => passTo(built.handler, req, reply, `${OAUTH_PATH}/.well-known/openid-configuration`),
    );

    // the end user's side of the authorization-code flow
    await app.register(
      async (scope) => {
        scope.addContentTypeParser(
          'application/x-www-form-urlencoded',
          { parseAs: 'string', bodyLimit: 4096 },
          (_req, body, done) => done(null, parseQuery(String(body))),
        );

        const details = async (req: FastifyRequest, reply: FastifyReply) => {
          try {
            return await built.provider.interactionDetails(req.raw, reply.raw);
          } catch {
            sendPage(
              reply,
              400,
              errorPage(
                'interaction_expired',
                'This sign-in has expired or was already used. Start again from the application.',
              ),
            );
            return undefined;
          }
        };

        const clientOf = async (clientId: unknown) =>
          typeof clientId === 'string' ? await built.provider.Client.find(clientId) : undefined;

        scope.get<{ Params: { uid: string } }>('/:uid', { schema: { hide: true } }, async (req, reply) => {
          const interaction = await details(req, reply);
          if (!interaction) return reply;
          if (interaction.uid !== req.params.uid) {
            return sendPage(
              reply,
              400,
              errorPage('interaction_mismatch', 'This page belongs to another sign-in.'),
            );
          }
          const client = await clientOf(interaction.params.client_id);
          const serviceId = clientString(client, clientProperties.serviceId);
          if (!client || !serviceId) {
            return sendPage(
              reply,
              400,
              errorPage('invalid_client', 'The application is not allowed to ask.'),
            );
          }
          if (interaction.prompt.name === 'login') {
            const settings = await findServiceSettings(db, serviceId);
            if (!settings?.login_url) {
              return sendPage(
                reply,
                503,
                errorPage('login_unavailable', 'The provider has not set up its sign-in page.'),
              );
            }
            // the provider's login page signs the user in and sends them back here with an assertion
            const target = new URL(settings.login_url);
            target.searchParams.set('interaction', interaction.uid);
            target.searchParams.set('return_to', `${issuer}/interaction/${interaction.uid}/login`);
            target.searchParams.set('client_name', client.clientName ?? client.clientId);
            return reply.redirect(target.href, 303);
          }
          const [branding, service] = await Promise.all([getPortalSettings(db), getService(db, serviceId)]);
          const planId = clientString(client, clientProperties.planId) ?? '';
          const allowed = new Map((await planScopes(db, serviceId, planId)).map((s) => [s.name, s]));
          const promptDetails = interaction.prompt.details as {
            missingOIDCScope?: string[];
            missingResourceScopes?: Record<string, string[]>;
          };
          const resourceScopes = promptDetails.missingResourceScopes?.[resourceOf(service.systemName)] ?? [];
          const scopes = [
            ...(promptDetails.missingOIDCScope ?? []).flatMap((s) => scopeDescriptions[s] ?? []),
            ...resourceScopes.flatMap((s) => allowed.get(s) ?? []),
          ];
          return sendPage(
            reply,
            200,
            renderConsentPage({
              branding,
              applicationName: client.clientName ?? client.clientId,
              serviceName: service.name,
              scopes,
              offline: client.grantTypeAllowed('refresh_token'),
              action: `${OAUTH_PATH}/interaction/${interaction.uid}`,
              csrf: csrfOf(interaction.uid),
            }),
          );
        });

        const finishLogin = async (
          req: FastifyRequest<{ Params: { uid: string } }>,
          reply: FastifyReply,
          assertion: unknown,
        ) => {
          const interaction = await details(req, reply);
          if (!interaction) return reply;
          if (interaction.uid !== req.params.uid || interaction.prompt.name !== 'login') {
            return sendPage(
              reply,
              400,
              errorPage('interaction_mismatch', 'This sign-in is not waiting for a login.'),
            );
          }
          const client = await clientOf(interaction.params.client_id);
          const serviceId = clientString(client, clientProperties.serviceId);
          const secret = serviceId ? await loginSecretOf(db, sealer, serviceId) : undefined;
          if (!secret || typeof assertion !== 'string') {
            return sendPage(
              reply,
              400,
              errorPage('login_failed', 'The sign-in did not come back with an assertion.'),
            );
          }
          const checked = await verifyLoginAssertion(assertion, {
            secret,
            issuer,
            interaction: interaction.uid,
            clock: systemClock,
          });
          if (!checked.ok) {
            req.log.warn({ reason: checked.reason }, 'oauth: login assertion refused');
            return sendPage(reply, 400, errorPage('login_failed', 'The sign-in could not be verified.'));
          }
          reply.hijack();
          await built.provider.interactionFinished(
            req.raw,
            reply.raw,
            { login: { accountId: checked.subject } },
            { mergeWithLastSubmission: false },
          );
          return reply;
        };

        // The assertion comes back by a top-level GET: the interaction cookie is SameSite=Lax, so it is sent
        // on a cross-site navigation but not on a cross-site POST.
        scope.get<{ Params: { uid: string }; Querystring: { assertion?: string } }>(
          '/:uid/login',
          { schema: { hide: true } },
          (req, reply) => finishLogin(req, reply, req.query.assertion),
        );

        scope.post<{ Params: { uid: string }; Body: Record<string, unknown> }>(
          '/:uid/confirm',
          { schema: { hide: true } },
          async (req, reply) => {
            const interaction = await details(req, reply);
            if (!interaction) return reply;
            if (interaction.uid !== req.params.uid || !csrfMatches(interaction.uid, req.body?.csrf)) {
              return sendPage(reply, 403, errorPage('csrf_invalid', 'The form is out of date; start again.'));
            }
            if (interaction.prompt.name !== 'consent' || !interaction.session) {
              return sendPage(
                reply,
                400,
                errorPage('interaction_mismatch', 'This sign-in is not waiting for consent.'),
              );
            }
            const provider = built.provider;
            const clientId = String(interaction.params.client_id);
            const grant = interaction.grantId
              ? await provider.Grant.find(interaction.grantId)
              : new provider.Grant({ accountId: interaction.session.accountId, clientId });
            if (!grant)
              return sendPage(reply, 400, errorPage('grant_missing', 'Start again from the application.'));
            const d = interaction.prompt.details as {
              missingOIDCScope?: string[];
              missingOIDCClaims?: string[];
              missingResourceScopes?: Record<string, string[]>;
            };
            if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
            if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
            for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
              grant.addResourceScope(indicator, scopes.join(' '));
            }
            const grantId = await grant.save();
            reply.hijack();
            await provider.interactionFinished(
              req.raw,
              reply.raw,
              { consent: { grantId } },
              { mergeWithLastSubmission: true },
            );
            return reply;
          },
        );

        scope.post<{ Params: { uid: string }; Body: Record<string, unknown> }>(
          '/:uid/abort',
          { schema: { hide: true } },
          async (req, reply) => {
            const interaction = await details(req, reply);
            if (!interaction) return reply;
            if (interaction.uid !== req.params.uid || !csrfMatches(interaction.uid, req.body?.csrf)) {
              return sendPage(reply, 403, errorPage('csrf_invalid', 'The form is out of date; start again.'));
            }
            reply.hijack();
            // RFC 6749 §4.1.2.1: the client learns the user said no
            await built.provider.interactionFinished(
              req.raw,
              reply.raw,
              { error: 'access_denied', error_description: 'The user denied the request.' },
              { mergeWithLastSubmission: false },
            );
            return reply;
          },
        );
      },
      { prefix: `${OAUTH_PATH}/interaction` },
    );
  };
}
