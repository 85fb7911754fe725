/**
 * The developer portal (`/`), and the browser-face machinery the console shares: sessions, CSRF, login
 * throttling, templates and assets.
 */
export { portalModule, csrfGuard, type PortalOptions } from './portal-module.js';
export { createSessions, isSecure, type Sessions, type WebSession } from './web-sessions.js';
export { createCsrf, csrfFieldName, csrfHeaderName, type Csrf } from './csrf.js';
export {
  createLoginThrottle,
  defaultThrottle,
  type DelayRule,
  type LoginAttempt,
  type LoginClaim,
  type LoginThrottle,
  type ThrottleOptions,
} from './login-throttle.js';
export { signSsoToken, verifySsoToken, maxSsoLifetimeSeconds, type SsoClaims } from './sso.js';
export { webKey, rotateWebKey } from './web-keys.js';
export { setFlash, takeFlash, type Flash, type FlashDeps } from './flash.js';
export type { WebFace } from './web-face.js';
export { passwordLoginRoutes, type PasswordLoginFace, type PasswordLoginOptions } from './password-login.js';
export { registerAssets, vendorAssets } from './assets.js';
export {
  Form,
  checked,
  Redirect,
  createViews,
  formOf,
  htmlNotFoundRoute,
  installHtmlErrors,
  prefersHtml,
  problemsOf,
  safeNext,
  sendHtml,
  type ErrorPage,
  type Views,
} from './web-pages.js';
export { docsDocument } from './openapi-docs.js';
export { bucketsBetween, tokensOn, valuesOn, type ChartData, type ChartUnit } from './usage-charts.js';
export { brandAdminRoutes } from './brand-admin-routes.js';
export * from './brand-schemas.js';
export {
  createContentPage,
  deleteContentPage,
  getContentPage,
  listContentPages,
  navigationPages,
  readablePage,
  renderMarkdown,
  updateContentPage,
} from './content-pages.js';
export {
  findShowcaseEntry,
  getShowcaseEntry,
  listShowcase,
  setShowcaseConsent,
  writeShowcaseEntry,
  deleteShowcaseEntry,
} from './showcase.js';
export { defaultFavicon, deleteFavicon, getUploadedFavicon, maxFaviconBytes, setFavicon } from './favicon.js';
