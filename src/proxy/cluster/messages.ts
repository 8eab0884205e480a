import type { BoundListener } from "../../sip/index.js";
import type { ProxyConfig } from "../proxy-config.js";
import type { EngineStats } from "../proxy-engine.js";

/** What the primary of a ProxyCluster tells a worker process (over the IPC channel). */
export type ToWorker =
  | {
      readonly type: "start";
      readonly index: number;
      readonly count: number;
      /** The config with every port resolved and the secrets filled in. */
      readonly config: ProxyConfig;
      /** Hex: the hand-over bus secret and the digest nonce key, shared by all workers. */
      readonly busSecret: string;
      readonly nonceSecret: string;
      readonly ownsStreams: boolean;
      /** This worker's own UDP port beside each UDP listener, and every other worker's. */
      readonly ownUdpPorts: readonly number[];
      readonly otherPorts: readonly number[];
      readonly logLevel: string;
    }
  | { readonly type: "peers"; readonly busPorts: readonly number[] }
  | { readonly type: "drain"; readonly on: boolean }
  | { readonly type: "workload"; readonly value: number }
  | { readonly type: "reloadTls" }
  | { readonly type: "stop" };

/** What a worker tells the primary. */
export type FromWorker =
  /** Listening for messages (one sent earlier, while its module loads, would be lost). */
  | { readonly type: "ready" }
  | {
      readonly type: "started";
      readonly busPort: number;
      readonly listeners: readonly BoundListener[];
    }
  | { readonly type: "failed"; readonly error: string }
  | {
      readonly type: "stats";
      readonly stats: EngineStats;
      /** Event-loop utilisation and cores used since the previous stats. */
      readonly elu: number;
      readonly cpu: number;
      readonly storeHealth: "ok" | "degraded" | "down";
    };
