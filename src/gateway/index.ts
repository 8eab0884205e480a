export {
  AccessControl,
  REFUSAL_REASONS,
  type AccessControlOptions,
  type AccessStats,
  type RefusalReason,
  type RequestSource,
  type Verdict,
} from "./access-control.js";
export {
  DEFAULT_BURST,
  DEFAULT_FLOOD_FACTOR,
  DEFAULT_IPV6_PREFIX_BITS,
  DEFAULT_LOG_INTERVAL_MS,
  DEFAULT_LOG_MAX_SOURCES,
  DEFAULT_MAX_TRACKED_SOURCES,
  DEFAULT_REQUESTS_PER_SECOND,
  DEFAULT_RETRY_AFTER_S,
  accessConfigSchema,
  parseAccessConfig,
  type AccessConfig,
  type AccessConfigInput,
} from "./access-config.js";
export { DEFAULT_SCANNER_AGENTS, ScannerAgents } from "./scanner-agents.js";
export { SourceRateLimiter, type RateLimiterOptions } from "./rate-limiter.js";
export { RefusalLog, type RefusalLogOptions } from "./refusal-log.js";
export { sourceKey, unmapIPv4 } from "./source-key.js";
export {
  ProxyChooser,
  type ChoiceKind,
  type MonitorQueryStats,
  type ProxyChoice,
  type ProxyChooserOptions,
  type ProxyChooserStats,
} from "./proxy-chooser.js";
export {
  DEFAULT_HOLD_OFF_MS,
  DEFAULT_MAX_PINS,
  DEFAULT_PIN_TTL_MS,
  DEFAULT_SELECT_TIMEOUT_MS,
  parseUpstreamConfig,
  upstreamConfigSchema,
  type UpstreamConfig,
  type UpstreamConfigInput,
} from "./upstream-config.js";
export { UPSTREAM_TRANSPORTS, type UpstreamTransport } from "./proxy-uri.js";
export type { ForwardStats, GatewayStatus } from "./gateway-status.js";
export {
  AUTH_REFUSAL_REASONS,
  GatewayMetrics,
  refusalsOf,
  type AuthRefusalReason,
  type GatewayRefusalReason,
} from "./gateway-metrics.js";
export { GatewayFront, type GatewayFrontOptions, type GatewayStatusBody } from "./gateway-front.js";
export { Gateway, type GatewayDeps } from "./gateway.js";
export {
  DEFAULT_ATTEMPT_TIMEOUT_MS,
  DEFAULT_GATEWAY_HTTP_PORT,
  gatewayConfigSchema,
  parseGatewayConfig,
  type GatewayConfig,
  type GatewayConfigInput,
} from "./gateway-config.js";
export {
  DEFAULT_DNS_MONITOR_PORT,
  readMonitorTarget,
  type MonitorTarget,
} from "./monitor-target.js";
