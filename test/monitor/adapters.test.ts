// The monitor's proxy adapters (issue 5) against REAL peers: `kamailio` polls a real Kamailio
// over JSON-RPC (xhttp + jsonrpcs) while SIPp holds calls through it; `options` pings a real
// sipsteer proxy (Sipsteer-Load, and 503 + Retry-After when drained), a real Kamailio (200
// without the header) and a port where nothing listens.
import assert from "node:assert/strict";
import { describe, test, type TestContext } from "node:test";
import {
  DEFAULT_RETRY_AFTER_S,
  MAX_RETRY_AFTER_S,
  Monitor,
  loadHeaderValue,
  parseMonitorConfig,
  retryAfterSeconds,
  type MonitorConfigInput,
  type ProxyListing,
  type ProxyStateEvent,
} from "../../src/monitor/index.js";
import { Proxy } from "../../src/proxy/index.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { openHandles } from "../helpers/handles.js";
import {
  DOMAIN,
  assertAllCalls,
  holdCalls,
  registerContact,
  startCallee,
} from "../helpers/held-calls.js";
import { kamailioRpc, startKamailio, type KamailioRun } from "../helpers/kamailio.js";
import { freePort, type SippRun } from "../helpers/sipp.js";
import { requireTool } from "../helpers/tools.js";
import { eventually } from "../helpers/eventually.js";

const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const PROBE_THRESHOLD = 2;
const POLL_MS = 100;

function haveKamailioAndSipp(t: TestContext): boolean {
  return requireTool(t, "kamailio", "kamailio") && requireTool(t, "sipp", "sip-tester");
}

async function listed(monitor: Monitor, id: string): Promise<ProxyListing | undefined> {
  const res = await fetch(`${monitor.httpUrl}/v1/proxies`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { proxies: ProxyListing[] }).proxies.find((p) => p.id === id);
}

/** The listing of `id` once `ready` holds for it. */
function listedWhen(
  monitor: Monitor,
  id: string,
  ready: (p: ProxyListing) => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<ProxyListing> {
  return eventually(
    async () => {
      const p = await listed(monitor, id);
      return p !== undefined && ready(p) ? p : undefined;
    },
    timeoutMs,
    `${id}: ${what}`,
  );
}

async function select(monitor: Monitor): Promise<{ status: number; proxy?: string }> {
  const res = await fetch(`${monitor.httpUrl}/v1/select`);
  if (res.status !== 200) {
    await res.body?.cancel();
    return { status: res.status };
  }
  return { status: 200, proxy: ((await res.json()) as { proxy: string }).proxy };
}

function udpPortOf(proxy: Proxy): number {
  return proxy.listeners.find((l) => l.protocol === "udp")!.port;
}

function tcpPortOf(proxy: Proxy): number {
  return proxy.listeners.find((l) => l.protocol === "tcp")!.port;
}

/** A sipsteer proxy on loopback (UDP and TCP) that pushes nowhere: only OPTIONS see it. */
function sipsteerProxy(id: string, capacityCalls = 0): Proxy {
  return new Proxy({
    id,
    domains: [DOMAIN],
    listen: [
      { protocol: "udp", address: "127.0.0.1", port: 0 },
      { protocol: "tcp", address: "127.0.0.1", port: 0 },
    ],
    allowedDestinations: LOOPBACK,
    auth: { enabled: false },
    http: { address: "127.0.0.1", port: 0 },
    capacity: { calls: capacityCalls, media: 0 },
    report: { intervalMs: 250, push: [] },
  });
}

function monitorConfig(proxies: MonitorConfigInput["proxies"]): MonitorConfigInput {
  return {
    http: { address: "127.0.0.1", port: 0 },
    allowedDestinations: LOOPBACK,
    proxies,
    table: { probeThreshold: PROBE_THRESHOLD },
  };
}

function kill(...runs: (SippRun | undefined)[]): void {
  for (const run of runs) run?.kill();
}

describe("kamailio adapter: a real Kamailio polled over JSON-RPC", () => {
  test("calls SIPp holds through Kamailio are its calls and calls/capacity its workload; killed, it is down after k failed polls; restarted on the same ports, it is a new boot taken at once", async (t) => {
    if (!haveKamailioAndSipp(t)) return;
    const CALLS = 3;
    let kamailio: KamailioRun | undefined;
    let callee: SippRun | undefined;
    let caller: SippRun | undefined;
    let monitor: Monitor | undefined;
    try {
      const c = await startCallee(CALLS);
      callee = c;
      const k = await startKamailio({ callee: `sip:127.0.0.1:${c.port}` });
      kamailio = k;
      monitor = new Monitor(
        monitorConfig([
          {
            id: "k1",
            adapter: "kamailio",
            rpc: k.rpc,
            capacity: { calls: 10 },
            uris: { udp: k.sipUri },
            pollIntervalMs: POLL_MS,
            pollTimeoutMs: 1000,
          },
        ]),
      );
      const events: ProxyStateEvent[] = [];
      monitor.table.on("state", (e) => events.push(e));
      await monitor.start();
      const m = monitor;
      const idle = await listedWhen(m, "k1", (p) => p.eligible, "eligible");
      assert.equal(idle.adapter, "kamailio");
      assert.equal(idle.collection, "poll");
      assert.equal(idle.calls, 0);
      assert.equal(idle.workload, 0);
      assert.match(idle.boot ?? "", /^kamailio /);
      assert.equal(typeof idle.latency_ms, "number");
      assert.equal(idle.uris.udp, k.sipUri);
      assert.deepEqual(await select(m), { status: 200, proxy: "k1" });

      caller = await holdCalls({
        remote: `127.0.0.1:${k.sipPort}`,
        user: "bob",
        calls: CALLS,
        holdMs: 4000,
      });
      const loaded = await listedWhen(m, "k1", (p) => p.calls === CALLS, `${CALLS} calls`);
      assert.equal(loaded.workload, CALLS / 10);
      // What Kamailio itself says, beside what the monitor shows.
      const active = (await kamailioRpc(k.rpc, "dlg.stats_active")) as { all: number };
      assert.equal(active.all, CALLS);
      assert.ok(m.table.status("k1")!.report!.cps > 0, "calls started within 5 s give a cps");
      assertAllCalls(await caller.result, CALLS, "calls through Kamailio");
      await listedWhen(m, "k1", (p) => p.calls === 0 && p.workload === 0, "calls over");

      const boot = (await listed(m, "k1"))!.boot;
      await k.kill();
      const down = await listedWhen(m, "k1", (p) => p.health === "down", "down");
      assert.equal(down.state, "down");
      assert.equal(down.eligible, false);
      const downEvent = events.find((e) => e.kind === "down" && e.proxy === "k1");
      assert.match(
        downEvent?.reason ?? "",
        new RegExp(`^${PROBE_THRESHOLD} probes failed: JSON-RPC`),
      );
      assert.equal((await select(m)).status, 503);
      assert.ok(m.collectorCounters().kamailio.k1!.failures >= PROBE_THRESHOLD);

      await k.stop();
      kamailio = await startKamailio({
        callee: `sip:127.0.0.1:${c.port}`,
        sipPort: k.sipPort,
        httpPort: k.httpPort,
      });
      const back = await listedWhen(m, "k1", (p) => p.eligible, "eligible again");
      assert.notEqual(back.boot, boot);
      assert.ok(events.some((e) => e.kind === "restarted" && e.proxy === "k1"));
    } finally {
      await monitor?.stop();
      kill(caller, callee);
      await kamailio?.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });

  test("on-query only: a select polls Kamailio first, and its report is due every onQueryMaxAgeMs", async (t) => {
    if (!haveKamailioAndSipp(t)) return;
    let kamailio: KamailioRun | undefined;
    let monitor: Monitor | undefined;
    try {
      kamailio = await startKamailio({ callee: "sip:127.0.0.1:9" });
      monitor = new Monitor({
        ...monitorConfig([
          {
            id: "k2",
            adapter: "kamailio",
            rpc: kamailio.rpc,
            capacity: { calls: 100 },
            uris: { udp: kamailio.sipUri },
            modes: ["on-query"],
            onQueryMaxAgeMs: 5000,
          },
        ]),
        onQueryWaitMs: 2000,
      });
      await monitor.start();
      assert.equal((await listed(monitor, "k2"))?.state, "stale");
      assert.deepEqual(await select(monitor), { status: 200, proxy: "k2" });
      const p = (await listed(monitor, "k2"))!;
      assert.equal(p.collection, "on-query");
      assert.equal(monitor.table.status("k2")!.report!.interval, 5000);
      assert.equal(monitor.collectorCounters().kamailio.k2!.polls, 1);
    } finally {
      await monitor?.stop();
      await kamailio?.stop();
    }
  });

  test("a Kamailio whose rpc host is outside allowedDestinations is never contacted", async () => {
    const monitor = new Monitor({
      ...monitorConfig([
        {
          id: "k3",
          adapter: "kamailio",
          rpc: "http://127.0.0.2:5071/RPC",
          capacity: { calls: 10 },
          uris: { udp: "sip:127.0.0.2:5060" },
          pollIntervalMs: 20,
        },
        { id: "o3", adapter: "options", sip: "sip:127.0.0.2:5060", pollIntervalMs: 20 },
      ]),
      allowedDestinations: ["127.0.0.1/32"],
    });
    try {
      await monitor.start();
      await new Promise((r) => setTimeout(r, 200));
      const counters = monitor.collectorCounters();
      assert.deepEqual(counters.refusedDestinations, ["k3", "o3"]);
      assert.deepEqual(counters.kamailio, {});
      assert.deepEqual(counters.options, {});
      assert.equal((await listed(monitor, "k3"))?.state, "stale");
    } finally {
      await monitor.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });
});

describe("options adapter: OPTIONS pings with the project's SIP stack", () => {
  test("a real sipsteer proxy over UDP and TCP: healthy, its Sipsteer-Load is the workload (rising with held calls), latency listed", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const proxy = sipsteerProxy("px", 4);
    let monitor: Monitor | undefined;
    let callee: SippRun | undefined;
    let caller: SippRun | undefined;
    try {
      await proxy.start();
      const udp = `sip:127.0.0.1:${udpPortOf(proxy)}`;
      const tcp = `sip:127.0.0.1:${tcpPortOf(proxy)};transport=tcp`;
      monitor = new Monitor(
        monitorConfig([
          { id: "o-udp", adapter: "options", sip: udp, pollIntervalMs: POLL_MS },
          {
            id: "o-tcp",
            adapter: "options",
            sip: tcp,
            pollIntervalMs: POLL_MS,
            capacity: { calls: 4 },
          },
        ]),
      );
      await monitor.start();
      const m = monitor;
      for (const [id, uris] of [
        ["o-udp", { udp }],
        ["o-tcp", { tcp }],
      ] as const) {
        // A proxy's first report measures its start-up as event-loop use: wait for an idle one.
        const p = await listedWhen(m, id, (x) => x.eligible && x.workload! < 0.5, "eligible, idle");
        assert.equal(p.adapter, "options");
        assert.equal(p.collection, "poll");
        assert.deepEqual(p.uris, uris);
        assert.equal(typeof p.latency_ms, "number");
        assert.ok(p.latency_ms! >= 0);
        assert.equal(m.collectorCounters().options[id]!.lastStatus, 200);
      }
      // Two calls held on a proxy of capacity 4: its Sipsteer-Load is at least 0.50.
      const c = await startCallee(2);
      callee = c;
      await registerContact(`127.0.0.1:${udpPortOf(proxy)}`, "bob", c.port);
      caller = await holdCalls({
        remote: `127.0.0.1:${udpPortOf(proxy)}`,
        user: "bob",
        calls: 2,
        holdMs: 3000,
      });
      for (const id of ["o-udp", "o-tcp"]) {
        const p = await listedWhen(m, id, (x) => x.workload! >= 0.5, "workload of 2 calls in 4");
        assert.ok(p.workload! < 1, `${id}: ${p.workload}`);
        assert.equal(p.eligible, true);
        // OPTIONS tell no call count.
        assert.equal(p.calls, 0);
      }
      assertAllCalls(await caller.result, 2, "calls through the proxy");
      await listedWhen(m, "o-udp", (x) => x.workload! < 0.5, "workload down again");
    } finally {
      await monitor?.stop();
      kill(caller, callee);
      await proxy.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });

  test("a drained sipsteer proxy answers 503 + Retry-After: full load, not chosen while another has room; back after its Retry-After on the injected clock", async () => {
    const clock = new FakeClock();
    const INTERVAL = 1000;
    const drained = sipsteerProxy("pd");
    const other = sipsteerProxy("po");
    let monitor: Monitor | undefined;
    try {
      await drained.start();
      await other.start();
      monitor = new Monitor(
        monitorConfig([
          {
            id: "d",
            adapter: "options",
            sip: `sip:127.0.0.1:${udpPortOf(drained)}`,
            pollIntervalMs: INTERVAL,
            pollTimeoutMs: 500,
          },
          {
            id: "o",
            adapter: "options",
            sip: `sip:127.0.0.1:${udpPortOf(other)}`,
            pollIntervalMs: INTERVAL,
            pollTimeoutMs: 500,
          },
        ]),
        { clock },
      );
      await monitor.start();
      const m = monitor;
      const counters = () => m.collectorCounters().options;
      /** One ping of each on the fake clock, waiting (in real time) for both answers. */
      const pingRound = async (first = false): Promise<void> => {
        const before = Object.values(counters()).map((x) => x.pings);
        clock.tick(first ? 0 : INTERVAL);
        await eventually(
          async () => {
            const now = counters();
            const done = ["d", "o"].every((id, i) => {
              const c = now[id]!;
              const answered = m.table.status(id)!.accepted + c.failures;
              return c.pings > before[i]! && answered >= c.pings;
            });
            return done ? true : undefined;
          },
          5000,
          "a ping round",
        );
      };
      await pingRound(true);
      assert.equal((await listed(m, "d"))?.eligible, true);
      // A proxy's first report measures its start-up as event-loop use: ping until both are idle.
      await eventually(
        async () => {
          await new Promise((r) => setTimeout(r, 100));
          await pingRound();
          const loads = await Promise.all(
            ["d", "o"].map(async (id) => (await listed(m, id))!.workload!),
          );
          return loads.every((w) => w < 0.5) ? true : undefined;
        },
        10_000,
        "both proxies idle",
      );

      drained.drain();
      await pingRound();
      assert.equal(counters().d!.lastStatus, 503);
      const full = (await listed(m, "d"))!;
      assert.equal(full.workload, 1);
      assert.equal(full.eligible, true, "a 503 is full load, not down");
      assert.equal(counters().d!.fullForMs, 30_000);
      for (let i = 0; i < 10; i++) assert.deepEqual(await select(m), { status: 200, proxy: "o" });

      // Undrained, it answers 200 again, yet stays full until the Retry-After has passed.
      drained.undrain();
      await pingRound();
      assert.equal(counters().d!.lastStatus, 200);
      assert.equal((await listed(m, "d"))!.workload, 1);
      while (counters().d!.fullForMs > 0) await pingRound();
      await pingRound();
      const back = (await listed(m, "d"))!;
      assert.ok(back.workload! < 1, `after Retry-After: ${back.workload}`);
      assert.equal(back.eligible, true);
      assert.equal(counters().d!.failures, 0);
    } finally {
      await monitor?.stop();
      await drained.stop();
      await other.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });

  test("a real Kamailio: 200 without Sipsteer-Load is healthy at the assumed workload (0 unless configured)", async (t) => {
    if (!haveKamailioAndSipp(t)) return;
    let kamailio: KamailioRun | undefined;
    let monitor: Monitor | undefined;
    try {
      kamailio = await startKamailio({ callee: "sip:127.0.0.1:9" });
      monitor = new Monitor(
        monitorConfig([
          { id: "ko", adapter: "options", sip: kamailio.sipUri, pollIntervalMs: POLL_MS },
          {
            id: "ko-tcp",
            adapter: "options",
            sip: `${kamailio.sipUri};transport=tcp`,
            assumedWorkload: 0.25,
            pollIntervalMs: POLL_MS,
          },
        ]),
      );
      await monitor.start();
      const udp = await listedWhen(monitor, "ko", (p) => p.eligible, "eligible");
      assert.equal(udp.workload, 0);
      assert.equal(typeof udp.latency_ms, "number");
      const tcp = await listedWhen(monitor, "ko-tcp", (p) => p.eligible, "eligible");
      assert.equal(tcp.workload, 0.25);
      assert.equal(monitor.collectorCounters().options["ko-tcp"]!.lastStatus, 200);
    } finally {
      await monitor?.stop();
      await kamailio?.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });

  test(`nothing listening: down after ${PROBE_THRESHOLD} failed pings (UDP: no answer; TCP: connection refused), never selected`, async () => {
    const udpPort = await freePort();
    const tcpPort = await freePort();
    const monitor = new Monitor(
      monitorConfig([
        {
          id: "gone-udp",
          adapter: "options",
          sip: `sip:127.0.0.1:${udpPort}`,
          pollIntervalMs: POLL_MS,
          pollTimeoutMs: 200,
        },
        {
          id: "gone-tcp",
          adapter: "options",
          sip: `sip:127.0.0.1:${tcpPort};transport=tcp`,
          pollIntervalMs: POLL_MS,
          pollTimeoutMs: 200,
        },
      ]),
    );
    const events: ProxyStateEvent[] = [];
    monitor.table.on("state", (e) => events.push(e));
    try {
      await monitor.start();
      for (const id of ["gone-udp", "gone-tcp"]) {
        const p = await listedWhen(monitor, id, (x) => x.health === "down", "down");
        assert.equal(p.eligible, false);
        assert.equal(p.workload, null);
      }
      const reason = (id: string) =>
        events.find((e) => e.proxy === id && e.kind === "down")?.reason ?? "";
      assert.match(reason("gone-udp"), /probes failed: OPTIONS no answer in 200 ms/);
      assert.match(reason("gone-tcp"), /probes failed: OPTIONS transport: CONNECT_FAILED/);
      assert.equal((await select(monitor)).status, 503);
    } finally {
      await monitor.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });

  test("Retry-After and Sipsteer-Load values are read leniently and bounded", () => {
    assert.equal(retryAfterSeconds("30"), 30);
    assert.equal(retryAfterSeconds("18000;duration=3600"), MAX_RETRY_AFTER_S);
    assert.equal(retryAfterSeconds("120 (I'm in a meeting)"), 120);
    assert.equal(retryAfterSeconds("soon"), undefined);
    assert.equal(retryAfterSeconds(undefined), undefined);
    assert.equal(DEFAULT_RETRY_AFTER_S, 30);
    assert.equal(loadHeaderValue("0.42"), 0.42);
    assert.equal(loadHeaderValue(" 1.25 "), 1.25);
    assert.equal(loadHeaderValue("-1"), undefined);
    assert.equal(loadHeaderValue("NaN"), undefined);
    assert.equal(loadHeaderValue("0.4x"), undefined);
  });
});

describe("monitor config: proxy adapters", () => {
  test("kamailio and options proxies get their defaults; sipsteer stays the default adapter", () => {
    const config = parseMonitorConfig({
      proxies: [
        "p1",
        { id: "p2", http: "http://127.0.0.1:9060", modes: ["poll"] },
        {
          id: "k1",
          adapter: "kamailio",
          rpc: "http://127.0.0.1:5071/RPC",
          capacity: { calls: 500 },
          uris: { udp: "sip:127.0.0.1:5060" },
        },
        { id: "o1", adapter: "options", sip: "sip:127.0.0.1:5070;transport=tcp" },
      ],
    });
    assert.equal((config.proxies[1] as { adapter: string }).adapter, "sipsteer");
    assert.deepEqual(config.proxies[2], {
      id: "k1",
      adapter: "kamailio",
      rpc: "http://127.0.0.1:5071/RPC",
      capacity: { calls: 500 },
      uris: { udp: "sip:127.0.0.1:5060" },
      modes: ["poll"],
      pollIntervalMs: 250,
      pollTimeoutMs: 1000,
      onQueryMaxAgeMs: 1000,
    });
    assert.deepEqual(config.proxies[3], {
      id: "o1",
      adapter: "options",
      sip: "sip:127.0.0.1:5070;transport=tcp",
      capacity: { calls: 0 },
      assumedWorkload: 0,
      modes: ["poll"],
      pollIntervalMs: 250,
      pollTimeoutMs: 1000,
      onQueryMaxAgeMs: 1000,
    });
    assert.deepEqual(parseMonitorConfig(config), config);
  });

  test("a bad adapter field stops start-up naming it", () => {
    const kamailio = {
      id: "k",
      adapter: "kamailio",
      rpc: "http://127.0.0.1:5071/RPC",
      capacity: { calls: 10 },
      uris: { udp: "sip:127.0.0.1:5060" },
    };
    const cases: [unknown, RegExp][] = [
      [
        { proxies: ["a", "b", { id: "k", adapter: "kamailio" }] },
        /^monitor\.proxies\.2\.rpc: required by the kamailio adapter$/,
      ],
      [
        { proxies: [{ ...kamailio, capacity: undefined }] },
        /^monitor\.proxies\.0\.capacity: required by the kamailio adapter$/,
      ],
      [
        { proxies: [{ ...kamailio, capacity: { calls: 0 } }] },
        /^monitor\.proxies\.0\.capacity\.calls: /,
      ],
      [
        { proxies: [{ ...kamailio, uris: undefined }] },
        /^monitor\.proxies\.0\.uris: required by the kamailio adapter$/,
      ],
      [
        { proxies: [{ ...kamailio, uris: {} }] },
        /^monitor\.proxies\.0\.uris: name at least one URI$/,
      ],
      [
        { proxies: [{ ...kamailio, rpc: "ftp://x" }] },
        /^monitor\.proxies\.0\.rpc: an http\(s\):\/\/ URL/,
      ],
      [{ proxies: [{ ...kamailio, modes: ["stream"] }] }, /^monitor\.proxies\.0\.modes\.0: /],
      [
        { proxies: [{ id: "o", adapter: "options" }] },
        /^monitor\.proxies\.0\.sip: required by the options adapter$/,
      ],
      [
        { proxies: [{ id: "o", adapter: "options", sip: "sips:10.0.0.1" }] },
        /^monitor\.proxies\.0\.sip: a sip: URI/,
      ],
      [
        { proxies: [{ id: "o", adapter: "options", sip: "sip:10.0.0.1;transport=ws" }] },
        /^monitor\.proxies\.0\.sip: transport=ws/,
      ],
      [
        { proxies: [{ id: "o", adapter: "options", sip: "x" }] },
        /^monitor\.proxies\.0\.sip: a SIP URI/,
      ],
      [
        { proxies: [{ id: "o", adapter: "options", sip: "sip:10.0.0.1", assumedWorkload: 2 }] },
        /^monitor\.proxies\.0\.assumedWorkload: /,
      ],
      [
        { proxies: [{ id: "o", adapter: "carrier" }] },
        /^monitor\.proxies\.0\.adapter: one of sipsteer, kamailio, options$/,
      ],
    ];
    for (const [input, message] of cases) {
      assert.throws(() => parseMonitorConfig(input), { message }, JSON.stringify(input));
    }
  });
});
