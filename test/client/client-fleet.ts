// A whole system in one process for the client SDK's tests: a real Monitor (HTTP, DNS and SIP
// redirect fronts) and real sipsteer Proxy instances on 127.0.0.1n pushing signed reports to
// it, with digest auth on (a credentials file's lines), optionally sharing one SQLite
// location store as a fleet (calls between proxies), and a static-SDP media stub.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MediaSession } from "../../src/client/index.js";
import { MediaRejectedError } from "../../src/client/index.js";
import type { SigningKey } from "../../src/contracts/index.js";
import { Monitor, type MonitorConfigInput } from "../../src/monitor/index.js";
import { Proxy, type ProxyConfigInput } from "../../src/proxy/index.js";
import { Credentials } from "../../src/sip/index.js";
import { eventually } from "../helpers/eventually.js";
import { freePort } from "../helpers/sipp.js";

export const ZONE = "sipsteer.test";
export const LOOPBACK = ["127.0.0.0/8", "::1/128"];
export const KEY: SigningKey = { id: "k1", secret: "a-shared-report-secret" };
export const PASSWORDS = {
  alice: "alice-client-secret",
  bob: "bob-client-secret",
  carol: "carol-client-secret",
} as const;
/** Short SIP timers for the agents: a dead proxy shows as a timeout in 64 × 50 ms = 3.2 s. */
export const UA_TIMERS = { t1Ms: 50, t2Ms: 400, t4Ms: 500, tryingDelayMs: 0 };
/** Workload = bindings / 10, so that the test sets each proxy's load by registering. */
export const BY_REGISTRATIONS = { terms: [{ metric: "registrations" as const, per: 10 }] };

export interface FleetOptions {
  readonly proxies: number;
  /** One SQLite file for all, each naming the others in `fleet`: calls between proxies. */
  readonly shared?: boolean;
  readonly workload?: MonitorConfigInput["workload"];
  readonly algorithms?: ("MD5" | "SHA-256")[];
  /** The proxies' registrar minimum (tests of refresh use short expiries). */
  readonly minExpires?: number;
  /** Each proxy's capacity in calls (its workload is then calls/capacity, or its ELU). */
  readonly capacityCalls?: number;
  /** Each proxy also listens for SIP over WebSocket (RFC 7118) on a free port (browsers). */
  readonly ws?: boolean;
  /** The monitor's media relays (issue 8). */
  readonly relays?: MonitorConfigInput["relays"];
  /** Proxy i's media relay settings (issue 8). */
  readonly media?: (i: number, monitorHttp: string) => ProxyConfigInput["media"];
}

export interface TestFleet {
  readonly monitor: Monitor;
  readonly proxies: Proxy[];
  readonly http: string;
  readonly dns: string;
  readonly sip: string;
  stopProxy(proxy: Proxy): Promise<void>;
  stop(): Promise<void>;
}

export function udpPortOf(proxy: Proxy): number {
  return proxy.listeners.find((l) => l.protocol === "udp")!.port;
}

export function addressOf(proxy: Proxy): string {
  return proxy.listeners[0]!.address;
}

/** Starts the monitor and `n` proxies (p1 on 127.0.0.11 …), and waits until all are eligible. */
export async function startFleet(options: FleetOptions): Promise<TestFleet> {
  const work = mkdtempSync(join(tmpdir(), "sipsteer-client-"));
  const monitor = new Monitor(
    {
      http: { address: "127.0.0.1", port: 0 },
      keys: [KEY],
      allowedDestinations: LOOPBACK,
      sip: {
        listen: [
          { protocol: "udp", address: "127.0.0.1", port: 0 },
          { protocol: "tcp", address: "127.0.0.1", port: 0 },
        ],
      },
      dns: {
        zone: ZONE,
        listen: [
          { protocol: "udp", address: "127.0.0.1", port: 0 },
          { protocol: "tcp", address: "127.0.0.1", port: 0 },
        ],
      },
      ...(options.workload === undefined ? {} : { workload: options.workload }),
      ...(options.relays === undefined ? {} : { relays: options.relays }),
    },
    { sipTimers: { t1Ms: 50 } },
  );
  const proxies: Proxy[] = [];
  const stopped = new Set<Proxy>();
  const stop = async (): Promise<void> => {
    for (const proxy of proxies) if (!stopped.has(proxy)) await proxy.stop();
    await monitor.stop();
    rmSync(work, { recursive: true, force: true });
  };
  try {
    await monitor.start();
    const credentials = Credentials.parse(
      Object.entries(PASSWORDS)
        .map(([user, password]) => Credentials.line(user, ZONE, password))
        .join("\n"),
    );
    const ports: number[] = [];
    for (let i = 0; i < options.proxies; i++) ports.push(await freePort());
    const members = ports.map((port, i) => ({
      id: `p${i + 1}`,
      uri: `sip:127.0.0.1${i + 1}:${port}`,
    }));
    for (let i = 0; i < options.proxies; i++) {
      const address = `127.0.0.1${i + 1}`;
      const config: ProxyConfigInput = {
        id: `p${i + 1}`,
        domains: [ZONE],
        listen: [
          { protocol: "udp", address, port: ports[i]! },
          { protocol: "tcp", address, port: ports[i]! },
          ...(options.ws ? [{ protocol: "ws" as const, address, port: 0 }] : []),
        ],
        allowedDestinations: LOOPBACK,
        auth: { enabled: true, ...(options.algorithms ? { algorithms: options.algorithms } : {}) },
        registrar: { minExpires: options.minExpires ?? 60, defaultExpires: 600, maxExpires: 7200 },
        http: { address: "127.0.0.1", port: 0 },
        ...(options.capacityCalls === undefined
          ? {}
          : { capacity: { calls: options.capacityCalls, media: 0 } }),
        report: { intervalMs: 100, push: [`${monitor.httpUrl}/v1/reports`], key: KEY },
        ...(options.media === undefined ? {} : { media: options.media(i, monitor.httpUrl) }),
        ...(options.shared
          ? {
              store: { kind: "sqlite" as const, file: join(work, "location.db") },
              fleet: members.filter((_, j) => j !== i),
            }
          : {}),
      };
      const proxy = new Proxy(config, { credentials });
      proxies.push(proxy);
      await proxy.start();
    }
    await eventually(
      () => (monitor.table.eligible().length === options.proxies ? true : undefined),
      10_000,
      `${options.proxies} eligible proxies`,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  const udp = (list: readonly { protocol: string; port: number }[]) =>
    list.find((l) => l.protocol === "udp")!.port;
  return {
    monitor,
    proxies,
    http: monitor.httpUrl,
    dns: `dns:127.0.0.1:${udp(monitor.dnsListeners)}/${ZONE}`,
    sip: `sip:127.0.0.1:${udp(monitor.sipListeners)}`,
    async stopProxy(proxy) {
      stopped.add(proxy);
      await proxy.stop();
    },
    stop,
  };
}

/** Waits until the monitor ranks the proxies in `order` (ids) for UDP. */
export async function rankedAs(monitor: Monitor, order: readonly string[]): Promise<void> {
  await eventually(
    () => {
      const ranked = monitor.selector.ranked("udp").map((r) => r.proxy);
      return ranked.join(" ") === order.join(" ") ? true : undefined;
    },
    10_000,
    `the monitor to rank ${order.join(" ")}`,
  );
}

/** A static SDP (RFC 4566) the stub offers and answers with; it records what it was given. */
export function staticSdp(name: string, port: number): string {
  return [
    "v=0",
    `o=${name} 1 1 IN IP4 127.0.0.1`,
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    `m=audio ${port} RTP/AVP 0`,
    "a=rtpmap:0 PCMU/8000",
    "",
  ].join("\r\n");
}

/** The test MediaSession: static SDP, no RTP; `refuse` makes answerFor throw (→ 488). */
export class StaticMedia implements MediaSession {
  readonly offers: string[] = [];
  readonly answers: string[] = [];
  stopped = 0;
  constructor(
    readonly sdp: string,
    readonly refuse = false,
  ) {}

  localOffer(): Promise<string> {
    return Promise.resolve(this.sdp);
  }

  answerFor(remoteOffer: string): Promise<string> {
    this.offers.push(remoteOffer);
    if (this.refuse) return Promise.reject(new MediaRejectedError("no common codec"));
    return Promise.resolve(this.sdp);
  }

  acceptAnswer(remoteAnswer: string): Promise<void> {
    this.answers.push(remoteAnswer);
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.stopped++;
    return Promise.resolve();
  }
}

/** Drains every proxy but `open` and waits until the monitor has only it eligible. */
export async function only(fleet: TestFleet, open: Proxy): Promise<void> {
  for (const proxy of fleet.proxies) {
    if (proxy === open) proxy.undrain();
    else proxy.drain();
  }
  await eventually(
    () => {
      const eligible = fleet.monitor.table.eligible().map((p) => p.id);
      return eligible.length === 1 && eligible[0] === open.config.id ? true : undefined;
    },
    10_000,
    `only ${open.config.id} eligible`,
  );
}
