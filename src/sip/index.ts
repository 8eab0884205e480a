export * from "./message/index.js";
export {
  SIP_PARSE_ERROR_CODES,
  SipParseError,
  SipResponseError,
  type SipParseErrorCode,
  type SipParseErrorOptions,
} from "./errors.js";
export { systemClock, type Clock, type ClockTimer } from "./clock.js";
export { TimerQueue, type Timer } from "./timer-queue.js";
export { silentLogger, type Logger } from "./logger.js";
export {
  TransportLayer,
  type BoundListener,
  type SendOptions,
  type SentMessage,
  type TransportDeps,
  type TransportEvents,
  type TransportStats,
} from "./transport/transport-layer.js";
export {
  DEFAULT_ALLOWED_DESTINATIONS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_SOURCE,
  DEFAULT_MAX_WRITE_BUFFER_BYTES,
  parseTransportOptions,
  transportOptionsSchema,
  type ListenerOptions,
  type TransportOptions,
  type TransportOptionsInput,
} from "./transport/transport-options.js";
export {
  PROTOCOLS,
  TransportError,
  defaultPort,
  isReliable,
  isSecure,
  protocolOfVia,
  viaTransport,
  type Endpoint,
  type FlowInfo,
  type InboundMessage,
  type Protocol,
  type SendTarget,
} from "./transport/types.js";
