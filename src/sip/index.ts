export * from "./message/index.js";
export {
  SIP_PARSE_ERROR_CODES,
  SipParseError,
  SipResponseError,
  type SipParseErrorCode,
  type SipParseErrorOptions,
} from "./errors.js";
export { systemClock, type Clock, type ClockTimer } from "./clock.js";
export { DestinationPolicy } from "./transport/destination-policy.js";
export { TimerQueue, type Timer } from "./timer-queue.js";
export { randomToken } from "./random-token.js";
export { silentLogger, type Logger } from "./logger.js";
export {
  TransportLayer,
  type BoundListener,
  type SendOptions,
  type SharedTransportHooks,
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
  DEFAULT_UDP_BUFFER_BYTES,
  listenerSchema,
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
export {
  DNS_RCODE_SERVFAIL,
  DnsExchange,
  DnsQueryError,
  lookupSrv,
  rcodeName,
  srvName,
  type DnsQueryFailure,
  type DnsServer,
  type LookupSrvOptions,
  type SrvLookup,
  type SrvTarget,
} from "./transport/srv-lookup.js";
export {
  TransactionLayer,
  type SendRequestOptions,
  type TransactionLayerEvents,
  type TransactionLayerOptions,
  type TransactionLayerTransport,
} from "./transaction/transaction-layer.js";
export {
  ClientTransaction,
  type ClientTransactionOptions,
} from "./transaction/client-transaction.js";
export { InviteClientTransaction } from "./transaction/invite-client-transaction.js";
export { NonInviteClientTransaction } from "./transaction/non-invite-client-transaction.js";
export { ServerTransaction } from "./transaction/server-transaction.js";
export { InviteServerTransaction } from "./transaction/invite-server-transaction.js";
export { NonInviteServerTransaction } from "./transaction/non-invite-server-transaction.js";
export type { TerminationReason, TransactionState } from "./transaction/transaction.js";
export { ackForNon2xx, createCancel } from "./transaction/ack-cancel.js";
export { newBranch, serverKey } from "./transaction/transaction-keys.js";
export {
  DEFAULT_T1_MS,
  DEFAULT_T2_MS,
  DEFAULT_T4_MS,
  DEFAULT_TRYING_DELAY_MS,
  TIMER_D_MS,
  parseTransactionOptions,
  transactionOptionsSchema,
  type TransactionOptions,
  type TransactionOptionsInput,
} from "./transaction/transaction-timers.js";
export * from "./auth/index.js";
