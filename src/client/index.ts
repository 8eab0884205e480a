// The client SDK's public surface (issue 6): discover the least-loaded proxy, register,
// call and answer. Media plugs in through MediaSession.
export {
  Call,
  type CallDirection,
  type CallEvents,
  type CallOptions,
  type CallState,
} from "./call.js";
export { Dialog, targetOfUri } from "./dialog.js";
export {
  DEFAULT_DISCOVERY_TIMEOUT_MS,
  Discovery,
  type DiscoveryDeps,
  type DiscoveryOptions,
  type DiscoveryResult,
} from "./discovery.js";
export { resolveOverDns, type DnsServer } from "./dns-resolver.js";
export {
  CallEndedError,
  CallStateError,
  DISCOVERY_ERROR_CODES,
  DiscoveryError,
  MediaRejectedError,
  RegistrationError,
  type CallEnd,
  type DiscoveryErrorCode,
} from "./errors.js";
export { selectOverHttp, type HttpSelectResult } from "./http-select.js";
export type { MediaSession } from "./media-session.js";
export { RtpMediaSession, type RtpMediaOptions } from "./rtp-media-session.js";
export { parseMonitorAddress, type MonitorAddress } from "./monitor-address.js";
export {
  candidateFromUri,
  candidateName,
  sameProxy,
  type ProxyCandidate,
} from "./proxy-candidate.js";
export { redirectOverSip, type RedirectAsker } from "./sip-redirect.js";
export { orderSrv, type SrvRecord } from "./srv-order.js";
export { UserAgent, type UserAgentDeps, type UserAgentEvents } from "./user-agent.js";
export {
  DEFAULT_REBALANCE_THRESHOLD,
  DEFAULT_REGISTER_EXPIRES_S,
  DEFAULT_RETRY_AFTER_FAILURE_MS,
  REFRESH_AT_FRACTION,
  parseUserAgentConfig,
  userAgentConfigSchema,
  type UserAgentConfig,
  type UserAgentConfigInput,
} from "./user-agent-config.js";
