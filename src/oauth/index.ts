/**
 * OAuth 2.0: Trellis as the authorization server of `oauth2` services (mounted at /oauth on the control server)
 * and the gateway's verifier of the tokens. See docs/oauth.md.
 */
export { oauthControlModule, issuerOf, type OAuthModuleOptions, type OAuthServer } from './oauth-module.js';
export { oauthAdminRoutes } from './admin-routes.js';
export {
  OAuthTokenVerifier,
  isRejection,
  type AcceptedToken,
  type OAuthTokenVerifierOptions,
  type TokenRejection,
  type TokenRejectionCode,
  type TokenVerdict,
} from './jwt-verifier.js';
export { missingScope, planScopes, type ScopeInfo } from './scopes.js';
export { resourceOf } from './clients.js';
export { signLoginAssertion, verifyLoginAssertion } from './login-assertion.js';
export {
  generateLoginSecret,
  getClientOAuthSettings,
  getServiceOAuthSettings,
  updateClientOAuthSettings,
  updateServiceOAuthSettings,
  type ClientOAuthSettings,
  type ServiceOAuthSettings,
} from './oauth-settings.js';
export { rotateSigningKeys } from './signing-keys.js';
export { createSealer, type Sealer } from './key-encryption.js';
export { queryTokenCounts } from './token-counter.js';
