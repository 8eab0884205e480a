export { Collectors, type CollectorCounters, type CollectorsOptions } from "./collectors.js";
export { fetchLoad, type FetchLoadOptions, type FetchOutcome } from "./fetch-load.js";
export { jsonRpcCall, type JsonRpcCallOptions, type RpcOutcome } from "./json-rpc.js";
export {
  KamailioCollector,
  type KamailioCollectorOptions,
  type KamailioCounters,
} from "./kamailio-collector.js";
export {
  LoadPoller,
  alreadyHeld,
  type AdapterPolledProxy,
  type HttpPolledProxy,
  type LoadPollerOptions,
  type PolledProxy,
} from "./load-poller.js";
export { LoadStream, type LoadStreamOptions } from "./load-stream.js";
export {
  DEFAULT_RETRY_AFTER_S,
  LOAD_HEADER,
  MAX_RETRY_AFTER_S,
  OptionsProber,
  loadHeaderValue,
  retryAfterSeconds,
  type OptionsCounters,
  type OptionsProbeTarget,
  type OptionsProberOptions,
} from "./options-prober.js";
export {
  PORTS_PER_SESSION,
  RtpengineCollector,
  relaySize,
  relayWorkload,
  type RtpengineCollectorOptions,
  type RtpengineCounters,
} from "./rtpengine-collector.js";
