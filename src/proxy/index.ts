export { Proxy, type ProxyDeps } from "./proxy.js";
export {
  parseProxyConfig,
  proxyConfigSchema,
  type ProxyConfig,
  type ProxyConfigInput,
} from "./proxy-config.js";
export type { Binding, LocationStore, StoreHealth } from "./location-store/types.js";
export { SqliteLocationStore } from "./location-store/sqlite-store.js";
export { RedisLocationStore, type RedisStoreOptions } from "./location-store/redis-store.js";
export { workloadOf } from "./load/load-reporter.js";
export { ProxyCluster, workerCount, type ProxyClusterDeps } from "./cluster/proxy-cluster.js";
