import type { UpConfig } from "./up-config.js";

/** The monitor's addresses (DESIGN.md: 127.0.0.1, HTTP 8080, DNS 5300, SIP redirect 5060). */
export interface MonitorPlan {
  readonly address: string;
  readonly httpPort: number;
  /** UDP and TCP. */
  readonly dnsPort: number;
  /** The SIP redirect front, UDP and TCP. */
  readonly sipPort: number;
}

/** Proxy n: its own loopback address, the standard SIP ports, WS and HTTP. */
export interface ProxyPlan {
  /** `p1`, `p2` … */
  readonly id: string;
  /** Its DNS name in the zone, `p1.sipsteer.test`. */
  readonly name: string;
  readonly address: string;
  /** UDP and TCP. */
  readonly sipPort: number;
  /** Absent: no TLS listener (no certificate configured). */
  readonly tlsPort: number | undefined;
  readonly wsPort: number;
  readonly httpPort: number;
}

/**
 * Relay n (rtpengine) beside proxy n: its ng control socket (UDP) on the proxy's address, so
 * that every relay has the same ng port as every proxy has the same SIP port, and "r2 is p2's
 * relay" reads off the address; its RTP on `rtpAddress` in a port range no other relay uses.
 */
export interface RelayPlan {
  /** `r1`, `r2` … */
  readonly id: string;
  /** The proxy it serves first (`p1`). */
  readonly proxy: string;
  readonly ngAddress: string;
  readonly ngPort: number;
  readonly rtpAddress: string;
  readonly rtpMin: number;
  readonly rtpMax: number;
  /** rtpengine's `--max-sessions` and the monitor's capacity; 0: no limit. */
  readonly sessions: number;
}

/** Relays relay RTP on 127.0.0.1, where the demo's clients are. */
export const RELAY_RTP_ADDRESS = "127.0.0.1";

export interface UpPlan {
  readonly domain: string;
  readonly monitor: MonitorPlan;
  readonly proxies: readonly ProxyPlan[];
  /** One per proxy; none with `relays: false` or without the rtpengine binary. */
  readonly relays: readonly RelayPlan[];
}

/** One socket the plan will bind. Port 0: a free port chosen by the child at start. */
export interface PlannedPort {
  readonly address: string;
  readonly port: number;
  readonly protocol: "udp" | "tcp";
  /** What it is, for messages: `p2 SIP`. */
  readonly role: string;
  /** The option that moves it. */
  readonly option: string;
}

/** `10.0.0.10` plus 3 is `10.0.0.13` (the config keeps the sum inside the last octet). */
export function addressPlus(base: string, n: number): string {
  const octets = base.split(".").map(Number);
  octets[3] = octets[3]! + n;
  return octets.join(".");
}

/** Every address and port of `sipsteer up` from its config. */
export function planUp(config: Readonly<UpConfig>): UpPlan {
  const proxies: ProxyPlan[] = [];
  for (let n = 1; n <= config.proxies; n++) {
    proxies.push({
      id: `p${n}`,
      name: `p${n}.${config.domain}`,
      address: addressPlus(config.proxy.addressBase, n),
      sipPort: config.proxy.sipPort,
      tlsPort: config.proxy.tls === undefined ? undefined : config.proxy.tlsPort,
      wsPort: config.proxy.wsPort,
      httpPort: config.proxy.httpPort,
    });
  }
  const r = config.relay;
  const relays: RelayPlan[] = !config.relays
    ? []
    : proxies.map((p, i) => ({
        id: `r${i + 1}`,
        proxy: p.id,
        ngAddress: p.address,
        ngPort: r.ngPort,
        rtpAddress: RELAY_RTP_ADDRESS,
        rtpMin: r.rtpPortBase + i * r.rtpPortsEach,
        rtpMax: r.rtpPortBase + (i + 1) * r.rtpPortsEach - 1,
        sessions: r.sessions,
      }));
  return { domain: config.domain, monitor: { ...config.monitor }, proxies, relays };
}

/** `127.0.0.11:2223`, the form the monitor's and the proxies' configs name an ng socket by. */
export function ngEndpoint(relay: RelayPlan): string {
  return `${relay.ngAddress}:${relay.ngPort}`;
}

/** Every socket of the plan, monitor first. */
export function plannedPorts(plan: UpPlan): PlannedPort[] {
  const m = plan.monitor;
  const ports: PlannedPort[] = [
    {
      address: m.address,
      port: m.httpPort,
      protocol: "tcp",
      role: "monitor HTTP",
      option: "--http-port",
    },
    {
      address: m.address,
      port: m.dnsPort,
      protocol: "udp",
      role: "monitor DNS",
      option: "--dns-port",
    },
    {
      address: m.address,
      port: m.dnsPort,
      protocol: "tcp",
      role: "monitor DNS",
      option: "--dns-port",
    },
    {
      address: m.address,
      port: m.sipPort,
      protocol: "udp",
      role: "monitor SIP redirect",
      option: "--sip-port",
    },
    {
      address: m.address,
      port: m.sipPort,
      protocol: "tcp",
      role: "monitor SIP redirect",
      option: "--sip-port",
    },
  ];
  for (const p of plan.proxies) {
    const at = (port: number, protocol: "udp" | "tcp", what: string, option: string) =>
      ports.push({ address: p.address, port, protocol, role: `${p.id} ${what}`, option });
    at(p.sipPort, "udp", "SIP", "--proxy-sip-port");
    at(p.sipPort, "tcp", "SIP", "--proxy-sip-port");
    if (p.tlsPort !== undefined) at(p.tlsPort, "tcp", "SIP over TLS", "--proxy-tls-port");
    at(p.wsPort, "tcp", "SIP over WebSocket", "--proxy-ws-port");
    at(p.httpPort, "tcp", "HTTP", "--proxy-http-port");
  }
  // A relay's RTP range is bound a port at a time as calls come (rtpengine skips a taken
  // one), so only its ng socket is checked.
  for (const r of plan.relays) {
    ports.push({
      address: r.ngAddress,
      port: r.ngPort,
      protocol: "udp",
      role: `${r.id} ng control`,
      option: "--relay-ng-port",
    });
  }
  return ports;
}

/** `127.0.0.12:5060/udp` */
export function portName(p: { address: string; port: number; protocol: string }): string {
  return `${p.address}:${p.port}/${p.protocol}`;
}

/** Two sockets of the plan on the same address, port and protocol, if any (port 0 aside). */
export function clashingPorts(
  ports: readonly PlannedPort[],
): [PlannedPort, PlannedPort] | undefined {
  const seen = new Map<string, PlannedPort>();
  for (const p of ports) {
    if (p.port === 0) continue;
    const key = portName(p);
    const first = seen.get(key);
    if (first !== undefined) return [first, p];
    seen.set(key, p);
  }
  return undefined;
}

/**
 * The plan with its shared ports chosen where they are 0: a SIP or DNS port serves UDP and TCP
 * on one number, and every proxy's SIP port must be known to the others before they start
 * (the fleet), so `choose(addresses)` picks one free on all of them. The relays' ng port is
 * given to rtpengine on its command line, so it is chosen here too (one for all relays, not
 * the proxies' SIP port, which is UDP on the same addresses). Ports used by TCP alone stay 0
 * and are chosen by the child.
 */
export async function withSharedPortsChosen(
  plan: UpPlan,
  choose: (addresses: readonly string[]) => Promise<number>,
): Promise<UpPlan> {
  const m = plan.monitor;
  const dnsPort = m.dnsPort === 0 ? await choose([m.address]) : m.dnsPort;
  let sipPort = m.sipPort;
  while (sipPort === 0 || (m.sipPort === 0 && sipPort === dnsPort))
    sipPort = await choose([m.address]);
  const proxySip = plan.proxies[0]?.sipPort ?? 0;
  const proxySipPort = proxySip === 0 ? await choose(plan.proxies.map((p) => p.address)) : proxySip;
  const relayNg = plan.relays[0]?.ngPort ?? 0;
  let ngPort = relayNg;
  while (plan.relays.length > 0 && (ngPort === 0 || (relayNg === 0 && ngPort === proxySipPort)))
    ngPort = await choose(plan.relays.map((r) => r.ngAddress));
  return {
    ...plan,
    monitor: { ...m, dnsPort, sipPort },
    proxies: plan.proxies.map((p) => ({ ...p, sipPort: proxySipPort })),
    relays: plan.relays.map((r) => ({ ...r, ngPort })),
  };
}
