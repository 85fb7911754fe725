/**
 * Outbound HTTP: the one guarded client for everything Trellis fetches on someone's behalf (external JWKS,
 * webhooks next). Refuses non-public addresses after DNS resolution unless a host is allowed
 * (TRELLIS_OUTBOUND_ALLOW_HOSTS), follows no redirects, and bounds time and size. See docs/oauth.md.
 */
export {
  type HostResolver,
  type OutboundClient,
  type OutboundClientOptions,
  OutboundError,
  type OutboundErrorCode,
  type OutboundRequest,
  type OutboundResponse,
  checkOutboundUrl,
  createOutboundClient,
} from './outbound-client.js';
export { isIpLiteral, refusedRangeOf } from './address-policy.js';
