export { Collectors, type CollectorCounters, type CollectorsOptions } from "./collectors.js";
export { fetchLoad, type FetchLoadOptions, type FetchOutcome } from "./fetch-load.js";
export {
  LoadPoller,
  alreadyHeld,
  type LoadPollerOptions,
  type PolledProxy,
} from "./load-poller.js";
export { LoadStream, type LoadStreamOptions } from "./load-stream.js";
