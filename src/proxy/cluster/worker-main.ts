// The entry of a ProxyCluster worker process (node:cluster runs this file). It waits for
// its start message, runs a ProxyEngine on the shared listeners, steers each message to
// the process that owns it, and reports its stats to the primary.
import { performance } from "node:perf_hooks";
import { pino } from "pino";
import { SipUri, type SipMessage, type SipRequest } from "../../sip/index.js";
import { ProxyEngine } from "../proxy-engine.js";
import type { FromWorker, ToWorker } from "./messages.js";
import { branchTagOf, ownerOfBranch, ownerOfCallId } from "./steering.js";
import { WorkerBus } from "./worker-bus.js";

const STATS_EVERY_MS = 100;

function tell(message: FromWorker): void {
  process.send?.(message);
}

let engine: ProxyEngine | undefined;
let bus: WorkerBus | undefined;
let statsTimer: NodeJS.Timeout | undefined;
let workload = 0;

// The primary decides when to stop (it drains first); a terminal's Ctrl-C reaches the
// whole process group.
process.on("SIGINT", () => undefined);
process.on("SIGTERM", () => undefined);

process.on("message", (raw: ToWorker) => {
  switch (raw.type) {
    case "start":
      start(raw).catch((e: unknown) => {
        tell({ type: "failed", error: (e as Error).message });
        process.exit(1);
      });
      break;
    case "peers":
      if (bus !== undefined) bus.peers = raw.busPorts;
      break;
    case "drain":
      if (engine !== undefined) engine.draining = raw.on;
      break;
    case "workload":
      workload = raw.value;
      break;
    case "reloadTls":
      engine?.transport.reloadTlsCredentials().catch((e: unknown) => {
        process.stderr.write(`TLS reload failed: ${(e as Error).message}\n`);
      });
      break;
    case "stop":
      void stop();
      break;
  }
});
// The primary went away: nothing left to serve for.
process.on("disconnect", () => void stop());
tell({ type: "ready" });

async function start(m: Extract<ToWorker, { type: "start" }>): Promise<void> {
  const log = pino({ level: m.logLevel }, pino.destination(2)).child({
    role: "proxy",
    proxy: m.config.id,
    worker: m.index,
  });
  const self = m.index;
  const count = m.count;
  let serving = false;
  bus = new WorkerBus(Buffer.from(m.busSecret, "hex"), log, (delivery) => {
    // Hand-overs that come before our engine serves (at start-up) are dropped.
    if (!serving || engine === undefined) return;
    const transport = engine.transport;
    if (delivery.kind === "inbound") transport.inject(delivery.bytes, delivery.flow);
    else {
      transport.sendBytes(delivery.target, delivery.bytes).catch((e: unknown) => {
        log.debug({ err: e, target: delivery.target }, "handed-over send failed");
      });
    }
  });
  const busPort = await bus.start();
  const theBus = bus;
  const pinned = new Set([...m.ownUdpPorts, ...m.otherPorts]);
  const steer = (
    bytes: Buffer,
    message: SipMessage,
    flow: Parameters<typeof theBus.handInbound>[1],
  ) => {
    // The ACK of a 2xx routed by our pinned Record-Route is forwarded statelessly, by
    // whoever reads it: no hand-over, so it does not fall behind the BYE that follows it.
    if (message.type === "request" && message.method === "ACK" && routedByPin(message, pinned))
      return false;
    const owner =
      message.type === "response"
        ? ownerOfBranch(message.topVia?.branch)
        : ownerOfCallId(message.callId, count);
    if (owner === undefined || owner === self || owner >= count || !theBus.reaches(owner))
      return false;
    theBus.handInbound(owner, flow, bytes);
    return true;
  };
  engine = new ProxyEngine(m.config, {
    logger: log,
    onCallsChanged: () => undefined,
    workload: () => workload,
    shared: {
      transport: {
        ownsStreams: m.ownsStreams,
        steer,
        // Stream connections are process 0's.
        sendElsewhere: (target, bytes) => theBus.handSend(0, target, bytes),
        ownUdpPorts: m.ownUdpPorts,
      },
      otherPorts: m.otherPorts,
      branchTag: branchTagOf(self),
      nonceSecret: Buffer.from(m.nonceSecret, "hex"),
    },
  });
  await engine.start();
  serving = true;
  tell({ type: "started", busPort, listeners: engine.listeners });

  let elu = performance.eventLoopUtilization();
  let cpu = process.cpuUsage();
  let at = performance.now();
  statsTimer = setInterval(() => {
    if (engine === undefined) return;
    const eluNow = performance.eventLoopUtilization(elu);
    elu = performance.eventLoopUtilization();
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const now = performance.now();
    const cores = (used.user + used.system) / 1000 / Math.max(1, now - at);
    at = now;
    tell({
      type: "stats",
      stats: engine.stats(),
      elu: eluNow.utilization,
      cpu: cores,
      storeHealth: engine.storeHealth,
    });
  }, STATS_EVERY_MS);
}

/** True when the top Route is one of the workers' own ports: an in-dialog request. */
function routedByPin(request: SipRequest, pinned: ReadonlySet<number>): boolean {
  const top = request.routes[0]?.uri;
  return top instanceof SipUri && top.port !== undefined && pinned.has(top.port);
}

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (statsTimer !== undefined) clearInterval(statsTimer);
  await engine?.stop();
  await bus?.stop();
  process.exit(0);
}
