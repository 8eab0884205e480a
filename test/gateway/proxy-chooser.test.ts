// The gateway's proxy chooser (issue 9) against a REAL Monitor fed signed load reports over
// HTTP (as proxies push them), asked over its HTTP API and its DNS front, with the chooser's
// hold-offs, pin expiry and select timeouts on a fake clock: new registrations and dialogs go
// to the least loaded proxy, a registration stays pinned to its proxy until that proxy fails, a
// failed proxy is held off, dead and misbehaving monitors (http:// and dns:, mixed) are passed
// over, the fallback list, bounded pins, nothing left open.
import assert from "node:assert/strict";
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createTcpServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { decode, encode, type Answer, type DecodedPacket } from "dns-packet";
import { pino } from "pino";
import { signatureHeader, type LoadReport, type SigningKey } from "../../src/contracts/index.js";
import {
  ProxyChooser,
  type ProxyChoice,
  type UpstreamConfigInput,
} from "../../src/gateway/index.js";
import { Monitor } from "../../src/monitor/index.js";
import { systemClock, type Clock } from "../../src/sip/index.js";
import { eventually } from "../helpers/eventually.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { openHandles } from "../helpers/handles.js";
import { freePort } from "../helpers/sipp.js";

const KEY: SigningKey = { id: "k1", secret: "a-shared-report-secret" };

/** Proxy `pN` listens (as far as the monitor knows) on 127.0.0.1N:5060. */
function uriOf(id: string, transport: "udp" | "tcp" = "udp"): string {
  const n = id.slice(1);
  return `sip:127.0.0.1${n}:5060${transport === "tcp" ? ";transport=tcp" : ""}`;
}

const seqs = new Map<string, number>();

/** Pushes a signed report of `id` with this event-loop utilisation (its workload). */
async function push(monitor: Monitor, id: string, elu: number): Promise<void> {
  const seq = (seqs.get(id) ?? 0) + 1;
  seqs.set(id, seq);
  const report: LoadReport = {
    v: 1,
    proxy: id,
    boot: "chooser-test",
    seq,
    at: Date.now(),
    interval: 60_000,
    state: "active",
    calls: 0,
    registrations: 0,
    transactions: 0,
    media: 0,
    cps: 0,
    cpu: 0,
    elu,
    store: "ok",
    // Each select counts 1/capacity.calls against the proxy chosen until its next report
    // (the monitor's correction): with this capacity, the selects of these tests do not
    // change the ranking that the elu values make.
    capacity: { calls: 100_000, media: 0 },
    uris: { udp: uriOf(id), tcp: uriOf(id, "tcp") },
  };
  const body = Buffer.from(JSON.stringify(report));
  const res = await fetch(`${monitor.httpUrl}/v1/reports`, {
    method: "POST",
    body,
    headers: {
      "content-type": "application/json",
      "sipsteer-signature": signatureHeader(body, KEY),
    },
  });
  assert.equal(res.status, 204, await res.text());
}

/** Waits until the monitor ranks the proxies (ids) in `order` for UDP. */
async function rankedAs(monitor: Monitor, order: readonly string[]): Promise<void> {
  await eventually(
    () =>
      monitor.selector
        .ranked("udp")
        .map((r) => r.proxy)
        .join(" ") === order.join(" ")
        ? true
        : undefined,
    10_000,
    `the monitor to rank ${order.join(" ")}`,
  );
}

const ZONE = "sipsteer.test";

/** A monitor with its HTTP API and, with `dns`, its DNS front (UDP) for ZONE. */
async function startMonitor(options: { dns?: boolean } = {}): Promise<Monitor> {
  const monitor = new Monitor({
    http: { address: "127.0.0.1", port: 0 },
    keys: [KEY],
    ...(options.dns === true
      ? { dns: { zone: ZONE, listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }] } }
      : {}),
  });
  await monitor.start();
  return monitor;
}

/** The `dns:HOST:PORT/ZONE` monitor address of a monitor's DNS front. */
function dnsMonitorOf(monitor: Monitor, zone = ZONE): string {
  return `dns:127.0.0.1:${monitor.dnsListeners[0]!.port}/${zone}`;
}

function ids(list: readonly ProxyChoice[]): string[] {
  return list.map((c) => c.id);
}

interface Setup {
  chooser: ProxyChooser;
  clock: FakeClock;
  lines: Record<string, unknown>[];
}

const choosers: ProxyChooser[] = [];

function chooserWith(config: UpstreamConfigInput, clock: Clock = new FakeClock()): Setup {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: "debug" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const chooser = new ProxyChooser({ config, clock, logger });
  choosers.push(chooser);
  return { chooser, clock: clock as FakeClock, lines };
}

/** An address nothing listens on: connections to it are refused at once. */
async function deadMonitorUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

/** A TCP server that accepts connections and never answers (a hung monitor). */
async function blackHole(): Promise<{
  url: string;
  connections: () => number;
  connected: () => Promise<void>;
  close: () => Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let count = 0;
  const waiting: (() => void)[] = [];
  const server: Server = createTcpServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    socket.resume();
    for (const w of waiting.splice(0)) w();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => count,
    connected: () => new Promise<void>((r) => waiting.push(r)),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** An HTTP server answering every request with `status` and `body` (a broken monitor). */
async function fakeMonitor(
  status: number,
  body: string,
): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server: HttpServer = createHttpServer((_req, res) => {
    hits++;
    res.writeHead(status, { "content-type": "application/json" });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    hits: () => hits,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe("gateway proxy chooser - against a real monitor", () => {
  let monitor: Monitor;

  before(async () => {
    monitor = await startMonitor();
    await push(monitor, "p1", 0.8);
    await push(monitor, "p2", 0.1);
    await push(monitor, "p3", 0.5);
    await rankedAs(monitor, ["p2", "p3", "p1"]);
  });
  after(async () => {
    for (const c of choosers.splice(0)) await c.stop();
    await monitor.stop();
  });

  it("a new registration gets the monitor's ranking, least loaded first, with its targets", async () => {
    const { chooser } = chooserWith({ monitors: [monitor.httpUrl] });
    const list = await chooser.candidatesFor("register", "sip:alice@sipsteer.test");
    assert.deepEqual(list, [
      {
        id: "p2",
        uri: "sip:127.0.0.12:5060",
        target: { protocol: "udp", address: "127.0.0.12", port: 5060 },
        via: "monitor",
      },
      {
        id: "p3",
        uri: "sip:127.0.0.13:5060",
        target: { protocol: "udp", address: "127.0.0.13", port: 5060 },
        via: "monitor",
      },
      {
        id: "p1",
        uri: "sip:127.0.0.11:5060",
        target: { protocol: "udp", address: "127.0.0.11", port: 5060 },
        via: "monitor",
      },
    ]);
    assert.equal(chooser.stats().monitorQueries, 1);
    assert.equal(chooser.stats().monitorFailures, 0);
  });

  it("answers many concurrent requests, each with its own query and connection", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on("warning", onWarning);
    try {
      const { chooser } = chooserWith({ monitors: [monitor.httpUrl] });
      const lists = await Promise.all(
        Array.from({ length: 30 }, (_, i) => chooser.candidatesFor("dialog", `burst-${i}`)),
      );
      assert.ok(lists.every((l) => l.length === 3));
      assert.equal(chooser.stats().monitorQueries, 30);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings, [], "no listener-leak warning for many queries under way");
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("asks for the configured transport: tcp gives the proxies' TCP URIs and targets", async () => {
    const { chooser } = chooserWith({ monitors: [monitor.httpUrl], transport: "tcp" });
    const [first] = await chooser.candidatesFor("dialog", "call-1@client");
    assert.equal(first!.uri, "sip:127.0.0.12:5060;transport=tcp");
    assert.deepEqual(first!.target, { protocol: "tcp", address: "127.0.0.12", port: 5060 });
  });

  it("a pinned registration stays on its proxy though another is now less loaded; new ones go to the least loaded", async () => {
    const { chooser } = chooserWith({ monitors: [monitor.httpUrl] });
    const aor = "sip:alice@sipsteer.test";
    const first = await chooser.candidatesFor("register", aor);
    assert.equal(first[0]!.id, "p2");
    chooser.pin(aor, "p2");
    assert.equal(chooser.pinnedProxy(aor), "p2");

    await push(monitor, "p2", 0.9);
    await rankedAs(monitor, ["p3", "p1", "p2"]);

    const refresh = await chooser.candidatesFor("register", aor);
    assert.deepEqual(
      ids(refresh),
      ["p2", "p3", "p1"],
      "pinned first, then the ranking, no duplicate",
    );
    assert.equal(refresh[0]!.via, "pinned");
    assert.equal(refresh[1]!.via, "monitor");

    const other = await chooser.candidatesFor("register", "sip:bob@sipsteer.test");
    assert.deepEqual(ids(other), ["p3", "p1", "p2"]);
    const dialog = await chooser.candidatesFor("dialog", "call-2@client");
    assert.equal(dialog[0]!.id, "p3", "a dialog is never pinned");
    assert.deepEqual(chooser.stats().pinnedByProxy, { p2: 1 });

    chooser.unpin(aor);
    assert.equal(chooser.pinnedProxy(aor), undefined);
    assert.equal((await chooser.candidatesFor("register", aor))[0]!.id, "p3");

    await push(monitor, "p2", 0.1);
    await rankedAs(monitor, ["p2", "p3", "p1"]);
  });

  it("failed(): the proxy's registrations are unpinned and it gets no new work until its hold-off ends", async () => {
    const { chooser, clock, lines } = chooserWith({
      monitors: [monitor.httpUrl],
      holdOffMs: 5_000,
    });
    const alice = "sip:alice@sipsteer.test";
    const carol = "sip:carol@sipsteer.test";
    assert.equal((await chooser.candidatesFor("register", alice))[0]!.id, "p2");
    chooser.pin(alice, "p2");
    chooser.pin(carol, "p2");
    chooser.pin("sip:dave@sipsteer.test", "p3");

    chooser.failed("p2", "timeout");
    assert.equal(chooser.pinnedProxy(alice), undefined);
    assert.equal(chooser.pinnedProxy(carol), undefined);
    assert.deepEqual(chooser.stats().pinnedByProxy, { p3: 1 });
    assert.deepEqual(chooser.stats().failuresByProxy, { p2: 1 });
    assert.deepEqual(chooser.stats().heldOff, ["p2"]);
    const warned = lines.find((l) => l.msg === "proxy failed; held off new work");
    assert.equal(warned?.proxy, "p2");
    assert.equal(warned?.unpinned, 2);

    // The monitor still ranks p2 first; the chooser holds it off.
    await rankedAs(monitor, ["p2", "p3", "p1"]);
    assert.deepEqual(ids(await chooser.candidatesFor("register", alice)), ["p3", "p1"]);
    assert.deepEqual(ids(await chooser.candidatesFor("dialog", "call-3@client")), ["p3", "p1"]);
    chooser.pin(alice, "p2");
    assert.equal(chooser.pinnedProxy(alice), undefined, "no pin to a held-off proxy");

    clock.tick(4_999);
    assert.deepEqual(ids(await chooser.candidatesFor("register", alice)), ["p3", "p1"]);
    clock.tick(1);
    assert.equal(chooser.isHeldOff("p2"), false);
    assert.deepEqual(chooser.stats().heldOff, []);
    const back = await chooser.candidatesFor("register", alice);
    assert.equal(back[0]!.id, "p2", "back in the ranking once its hold-off is over");
  });

  it("a dead monitor first in the list is passed over for the second, then asked after it until its hold-off ends", async () => {
    const dead = await deadMonitorUrl();
    const { chooser, clock, lines } = chooserWith({
      monitors: [dead, monitor.httpUrl],
      holdOffMs: 5_000,
    });
    assert.equal((await chooser.candidatesFor("dialog", "c1"))[0]!.id, "p2");
    let s = chooser.stats();
    assert.deepEqual(
      s.monitors.map((m) => [m.queries, m.failures, m.up]),
      [
        [1, 1, false],
        [1, 0, true],
      ],
    );
    assert.equal(lines.filter((l) => l.msg === "monitor failed; asking the next").length, 1);

    assert.equal((await chooser.candidatesFor("dialog", "c2"))[0]!.id, "p2");
    s = chooser.stats();
    assert.equal(s.monitors[0]!.queries, 1, "the dead one is not asked while the other answers");
    assert.equal(s.monitors[1]!.queries, 2);

    clock.tick(5_000);
    assert.equal((await chooser.candidatesFor("dialog", "c3"))[0]!.id, "p2");
    s = chooser.stats();
    assert.equal(s.monitors[0]!.queries, 2, "retried in its place once its hold-off is over");
    assert.equal(s.monitors[0]!.failures, 2);
    assert.equal(s.monitorFailures, 2);
    assert.equal(
      lines.filter((l) => l.msg === "monitor failed; asking the next").length,
      1,
      "a monitor that stays down is warned about once",
    );
  });

  it("a monitor that does not answer within selectTimeoutMs is passed over; while down, one query at a time waits on it", async () => {
    const hole = await blackHole();
    try {
      const { chooser, clock } = chooserWith({
        monitors: [hole.url, monitor.httpUrl],
        selectTimeoutMs: 300,
        holdOffMs: 5_000,
      });
      const connected = hole.connected();
      const pending = chooser.candidatesFor("dialog", "c1");
      await connected;
      clock.tick(299);
      assert.equal(chooser.stats().monitors[1]!.queries, 0, "still waiting on the first");
      clock.tick(1);
      assert.equal((await pending)[0]!.id, "p2");
      assert.deepEqual(
        chooser.stats().monitors.map((m) => m.failures),
        [1, 0],
      );

      // Due a retry: the first request probes it, a concurrent one does not wait on it.
      clock.tick(5_000);
      const probed = hole.connected();
      const probing = chooser.candidatesFor("dialog", "c2");
      await probed;
      const other = await chooser.candidatesFor("dialog", "c3");
      assert.equal(other[0]!.id, "p2");
      assert.equal(hole.connections(), 2);
      clock.tick(300);
      assert.equal((await probing)[0]!.id, "p2");
      assert.equal(chooser.stats().monitors[0]!.queries, 2);
      assert.equal(clock.pending, 0, "no timeout left behind");
    } finally {
      await hole.close();
    }
  });

  for (const [what, status, body] of [
    ["not JSON", 200, "<html>oops</html>"],
    ["without a uri", 200, JSON.stringify({ proxy: "p9", workload: 0.1, alternates: [] })],
    [
      "with a host name, not an address",
      200,
      JSON.stringify({ proxy: "p9", uri: "sip:p9.example.com:5060", workload: 0, alternates: [] }),
    ],
    ["a 500", 500, JSON.stringify({ error: "boom" })],
  ] as const) {
    it(`a malformed answer (${what}) counts as the monitor's failure, is logged, and the next is asked`, async () => {
      const broken = await fakeMonitor(status, body);
      try {
        const { chooser, lines } = chooserWith({ monitors: [broken.url, monitor.httpUrl] });
        const list = await chooser.candidatesFor("register", "sip:erin@sipsteer.test");
        assert.equal(list[0]!.id, "p2");
        assert.equal(broken.hits(), 1);
        assert.equal(chooser.stats().monitors[0]!.failures, 1);
        const warned = lines.find((l) => l.msg === "monitor failed; asking the next");
        assert.equal(warned?.monitor, broken.url);
        assert.match(
          String(warned?.why),
          status === 200 ? /malformed select answer/ : /answered 500/,
        );
      } finally {
        await broken.close();
      }
    });
  }

  it("503 from every monitor (none eligible) is an answer: an empty list, not the fallback", async () => {
    const empty = await startMonitor();
    try {
      const { chooser } = chooserWith({
        monitors: [empty.httpUrl],
        fallback: ["sip:127.0.0.21:5060"],
      });
      assert.deepEqual(await chooser.candidatesFor("dialog", "c1"), []);
      const s = chooser.stats();
      assert.equal(s.monitors[0]!.noProxy, 1);
      assert.equal(s.monitors[0]!.failures, 0);
      assert.equal(s.monitors[0]!.up, true);
      assert.equal(s.fallbackLists, 0);
      assert.equal(s.emptyLists, 1);

      // A replica that knows the proxies is asked after the 503.
      const { chooser: two } = chooserWith({ monitors: [empty.httpUrl, monitor.httpUrl] });
      assert.equal((await two.candidatesFor("dialog", "c2"))[0]!.id, "p2");
      assert.equal(two.stats().monitors[0]!.noProxy, 1);
    } finally {
      await empty.stop();
    }
  });
});

describe("gateway proxy chooser - without a monitor", () => {
  after(async () => {
    for (const c of choosers.splice(0)) await c.stop();
  });

  it("no monitor answers: the fallback list in order, minus held-off proxies", async () => {
    const { chooser, clock } = chooserWith({
      monitors: [await deadMonitorUrl(), await deadMonitorUrl()],
      holdOffMs: 1_000,
      fallback: ["sip:127.0.0.21:5060", { id: "edge-b", uri: "sip:127.0.0.22:5070;transport=tcp" }],
    });
    const list = await chooser.candidatesFor("register", "sip:frank@sipsteer.test");
    assert.deepEqual(list, [
      {
        id: "sip:127.0.0.21:5060",
        uri: "sip:127.0.0.21:5060",
        target: { protocol: "udp", address: "127.0.0.21", port: 5060 },
        via: "fallback",
      },
      {
        id: "edge-b",
        uri: "sip:127.0.0.22:5070;transport=tcp",
        target: { protocol: "tcp", address: "127.0.0.22", port: 5070 },
        via: "fallback",
      },
    ]);
    assert.equal(chooser.stats().fallbackLists, 1);
    assert.equal(chooser.stats().monitorFailures, 2);

    chooser.pin("sip:frank@sipsteer.test", "edge-b");
    assert.deepEqual(ids(await chooser.candidatesFor("register", "sip:frank@sipsteer.test")), [
      "edge-b",
      "sip:127.0.0.21:5060",
    ]);

    chooser.failed("sip:127.0.0.21:5060", "503");
    assert.deepEqual(ids(await chooser.candidatesFor("dialog", "c1")), ["edge-b"]);
    chooser.failed("edge-b", "timeout");
    assert.deepEqual(await chooser.candidatesFor("dialog", "c2"), [], "nothing at all: empty");
    assert.equal(chooser.stats().emptyLists, 1);
    clock.tick(1_000);
    assert.equal((await chooser.candidatesFor("dialog", "c3")).length, 2);
  });

  it("no monitor and no fallback: an empty list", async () => {
    const { chooser } = chooserWith({ monitors: [await deadMonitorUrl()] });
    assert.deepEqual(await chooser.candidatesFor("register", "sip:gina@sipsteer.test"), []);
    assert.equal(chooser.stats().fallbackLists, 0);
    assert.equal(chooser.stats().emptyLists, 1);
  });

  it("pins are bounded: over maxPins the least recently pinned is dropped", async () => {
    const { chooser } = chooserWith({
      monitors: [await deadMonitorUrl()],
      fallback: [{ id: "a", uri: "sip:127.0.0.21:5060" }],
      maxPins: 2,
    });
    chooser.pin("sip:1@t", "a");
    chooser.pin("sip:2@t", "a");
    chooser.pin("sip:1@t", "a"); // a refresh: now the most recent
    chooser.pin("sip:3@t", "a");
    assert.equal(chooser.pinnedProxy("sip:2@t"), undefined);
    assert.equal(chooser.pinnedProxy("sip:1@t"), "a");
    assert.equal(chooser.pinnedProxy("sip:3@t"), "a");
    assert.equal(chooser.stats().pins, 2);
    assert.equal(chooser.stats().pinsEvicted, 1);
    assert.deepEqual(chooser.stats().pinnedByProxy, { a: 2 });
    assert.throws(() => chooser.pin("sip:4@t", "never-offered"), /never offered/);
  });

  it("pins expire after pinTtlMs without a refresh, swept on the clock", async () => {
    const { chooser, clock } = chooserWith({
      monitors: [await deadMonitorUrl()],
      fallback: [{ id: "a", uri: "sip:127.0.0.21:5060" }],
      pinTtlMs: 60_000,
    });
    chooser.pin("sip:1@t", "a");
    clock.tick(30_000);
    chooser.pin("sip:2@t", "a");
    clock.tick(29_999);
    assert.equal(chooser.stats().pins, 2);
    clock.tick(1);
    assert.equal(chooser.stats().pins, 1, "the first swept at its expiry");
    chooser.pin("sip:2@t", "a"); // refreshed at 60 s: lives until 120 s
    clock.tick(59_999);
    assert.equal(chooser.pinnedProxy("sip:2@t"), "a");
    clock.tick(1);
    assert.equal(chooser.stats().pins, 0);
    assert.equal(chooser.stats().pinsExpired, 2);
    assert.equal(clock.pending, 0, "no sweep timer while there is no pin");
  });

  it("stop() aborts a query under way, clears timers and pins, and leaves no handle open", async () => {
    const baseline = await openHandles();
    const hole = await blackHole();
    const { chooser } = chooserWith(
      {
        monitors: [hole.url],
        selectTimeoutMs: 10_000,
        fallback: [{ id: "a", uri: "sip:127.0.0.21:5060" }],
      },
      systemClock,
    );
    chooser.pin("sip:1@t", "a");
    const connected = hole.connected();
    const pending = chooser.candidatesFor("dialog", "c1");
    await connected;
    let stopped = false;
    const stopping = chooser.stop().then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(stopped, true, "stop() does not wait out the select timeout");
    await stopping;
    assert.deepEqual(await pending, []);
    assert.deepEqual(await chooser.candidatesFor("dialog", "c2"), []);
    assert.equal(chooser.stats().pins, 0);
    await chooser.stop();
    await hole.close();
    assert.deepEqual(await openHandles(), baseline);
  });
});

/** A UDP socket on loopback that takes queries and never answers (a hung DNS monitor). */
async function udpBlackHole(): Promise<{
  monitor: string;
  queries: () => number;
  queried: () => Promise<void>;
  close: () => Promise<void>;
}> {
  const socket: UdpSocket = createSocket("udp4");
  let count = 0;
  const waiting: (() => void)[] = [];
  socket.on("message", () => {
    count++;
    for (const w of waiting.splice(0)) w();
  });
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
  return {
    monitor: `dns:127.0.0.1:${socket.address().port}/${ZONE}`,
    queries: () => count,
    queried: () => new Promise<void>((r) => waiting.push(r)),
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

/**
 * A scripted DNS server on loopback: `answer` gives the datagrams to send back for each query
 * (none: it stays silent).
 */
async function scriptedDns(
  answer: (query: DecodedPacket) => Buffer[],
): Promise<{ monitor: string; asked: () => string[]; close: () => Promise<void> }> {
  const socket: UdpSocket = createSocket("udp4");
  const asked: string[] = [];
  socket.on("message", (bytes: Buffer, peer: RemoteInfo) => {
    const query = decode(bytes);
    const q = query.questions![0]!;
    asked.push(`${q.type} ${q.name}`);
    for (const reply of answer(query)) socket.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
  return {
    monitor: `dns:127.0.0.1:${socket.address().port}/${ZONE}`,
    asked: () => asked,
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

/** A response to `query` with these records (rcode 0 unless given). */
function responseTo(
  query: DecodedPacket,
  records: { answers?: Answer[]; additionals?: Answer[]; rcode?: number; id?: number } = {},
): Buffer {
  return encode({
    type: "response",
    id: records.id ?? query.id ?? 0,
    flags: (1 << 10) | (records.rcode ?? 0), // AA, and the rcode in the low bits
    questions: query.questions,
    answers: records.answers ?? [],
    additionals: records.additionals ?? [],
  });
}

describe("gateway proxy chooser - dns: monitors against a real monitor's DNS front", () => {
  let monitor: Monitor;
  let dns: string;

  before(async () => {
    monitor = await startMonitor({ dns: true });
    await push(monitor, "p1", 0.8);
    await push(monitor, "p2", 0.1);
    await push(monitor, "p3", 0.5);
    await rankedAs(monitor, ["p2", "p3", "p1"]);
    dns = dnsMonitorOf(monitor);
  });
  after(async () => {
    for (const c of choosers.splice(0)) await c.stop();
    await monitor.stop();
  });

  // DESIGN.md "Client query": SRV _sip._udp, least loaded first (priority 10, the others at 20
  // by rank), targets p<n>.<zone> with their A records in the additional section.
  it("a new registration gets the same ranking as over HTTP, ids from the SRV targets' names", async () => {
    const { chooser } = chooserWith({ monitors: [dns] });
    const list = await chooser.candidatesFor("register", "sip:alice@sipsteer.test");
    assert.deepEqual(list, [
      {
        id: "p2",
        uri: "sip:127.0.0.12:5060",
        target: { protocol: "udp", address: "127.0.0.12", port: 5060 },
        via: "monitor",
      },
      {
        id: "p3",
        uri: "sip:127.0.0.13:5060",
        target: { protocol: "udp", address: "127.0.0.13", port: 5060 },
        via: "monitor",
      },
      {
        id: "p1",
        uri: "sip:127.0.0.11:5060",
        target: { protocol: "udp", address: "127.0.0.11", port: 5060 },
        via: "monitor",
      },
    ]);
    const { chooser: overHttp } = chooserWith({ monitors: [monitor.httpUrl] });
    assert.deepEqual(await overHttp.candidatesFor("register", "sip:alice@sipsteer.test"), list);
    const s = chooser.stats();
    assert.deepEqual(s.monitors, [{ url: dns, up: true, queries: 1, failures: 0, noProxy: 0 }]);
    assert.equal(s.monitorFailures, 0);
  });

  it("transport tcp asks _sip._tcp: the proxies' TCP URIs and targets", async () => {
    const { chooser } = chooserWith({ monitors: [dns], transport: "tcp" });
    const list = await chooser.candidatesFor("dialog", "call-1@client");
    assert.deepEqual(ids(list), ["p2", "p3", "p1"]);
    assert.equal(list[0]!.uri, "sip:127.0.0.12:5060;transport=tcp");
    assert.deepEqual(list[0]!.target, { protocol: "tcp", address: "127.0.0.12", port: 5060 });
  });

  it("pins and failed() work on the DNS ids, the same as an http:// monitor's", async () => {
    const { chooser } = chooserWith({ monitors: [dns, monitor.httpUrl], holdOffMs: 1_000 });
    const aor = "sip:bob@sipsteer.test";
    assert.equal((await chooser.candidatesFor("register", aor))[0]!.id, "p2");
    chooser.pin(aor, "p2");
    const refresh = await chooser.candidatesFor("register", aor);
    assert.deepEqual(ids(refresh), ["p2", "p3", "p1"]);
    assert.equal(refresh[0]!.via, "pinned");
    chooser.failed("p2", "503");
    assert.equal(chooser.pinnedProxy(aor), undefined);
    assert.deepEqual(ids(await chooser.candidatesFor("register", aor)), ["p3", "p1"]);
  });

  it("a dns: monitor that does not answer within selectTimeoutMs is passed over for the next, then asked after it until its hold-off ends", async () => {
    const hole = await udpBlackHole();
    try {
      const { chooser, clock, lines } = chooserWith({
        monitors: [hole.monitor, dns],
        selectTimeoutMs: 300,
        holdOffMs: 5_000,
      });
      const queried = hole.queried();
      const pending = chooser.candidatesFor("dialog", "c1");
      await queried;
      clock.tick(299);
      assert.equal(chooser.stats().monitors[1]!.queries, 0, "still waiting on the first");
      clock.tick(1);
      assert.deepEqual(ids(await pending), ["p2", "p3", "p1"]);
      let s = chooser.stats();
      assert.deepEqual(
        s.monitors.map((m) => [m.queries, m.failures, m.up]),
        [
          [1, 1, false],
          [1, 0, true],
        ],
      );
      assert.equal(s.monitorFailures, 1);
      const warned = lines.find((l) => l.msg === "monitor failed; asking the next");
      assert.equal(warned?.monitor, hole.monitor);
      assert.match(String(warned?.why), /no answer in 300 ms/);
      assert.equal(clock.pending, 0, "no timeout left behind");

      assert.equal((await chooser.candidatesFor("dialog", "c2"))[0]!.id, "p2");
      assert.equal(hole.queries(), 1, "not asked while down and the other answers");

      // Due a retry: the first request probes it, a concurrent one does not wait on it.
      clock.tick(5_000);
      const probed = hole.queried();
      const probing = chooser.candidatesFor("dialog", "c3");
      await probed;
      assert.equal((await chooser.candidatesFor("dialog", "c4"))[0]!.id, "p2");
      assert.equal(hole.queries(), 2);
      clock.tick(300);
      assert.equal((await probing)[0]!.id, "p2");
      s = chooser.stats();
      assert.equal(s.monitors[0]!.failures, 2);
      assert.equal(s.monitors[1]!.queries, 4);
      assert.equal(clock.pending, 0);
    } finally {
      await hole.close();
    }
  });

  it("mixed lists fail over both ways: a dead dns: port (ICMP) to http://, a dead http:// to dns:", async () => {
    const deadDns = `dns:127.0.0.1:${await freePort()}/${ZONE}`;
    const { chooser: toHttp } = chooserWith({ monitors: [deadDns, monitor.httpUrl] });
    assert.deepEqual(ids(await toHttp.candidatesFor("dialog", "c1")), ["p2", "p3", "p1"]);
    assert.deepEqual(
      toHttp.stats().monitors.map((m) => [m.url, m.failures, m.up]),
      [
        [deadDns, 1, false],
        [monitor.httpUrl, 0, true],
      ],
    );

    const deadHttp = await deadMonitorUrl();
    const { chooser: toDns, lines } = chooserWith({ monitors: [deadHttp, dns] });
    assert.deepEqual(ids(await toDns.candidatesFor("dialog", "c2")), ["p2", "p3", "p1"]);
    assert.deepEqual(
      toDns.stats().monitors.map((m) => [m.url, m.failures, m.up]),
      [
        [deadHttp, 1, false],
        [dns, 0, true],
      ],
    );
    assert.equal(lines.filter((l) => l.msg === "monitor failed; asking the next").length, 1);
  });

  it("a zone the front does not serve (REFUSED) is the monitor's failure, logged, and the next is asked", async () => {
    const wrong = dnsMonitorOf(monitor, "example.org");
    const { chooser, lines } = chooserWith({ monitors: [wrong, dns] });
    assert.equal((await chooser.candidatesFor("dialog", "c1"))[0]!.id, "p2");
    assert.equal(chooser.stats().monitors[0]!.failures, 1);
    const warned = lines.find((l) => l.msg === "monitor failed; asking the next");
    assert.equal(warned?.monitor, wrong);
    assert.match(String(warned?.why), /REFUSED for _sip\._udp\.example\.org SRV/);
  });

  it("SERVFAIL (no eligible proxy) is an answer: an empty list, not the fallback; a replica is asked after it", async () => {
    const empty = await startMonitor({ dns: true });
    try {
      const { chooser } = chooserWith({
        monitors: [dnsMonitorOf(empty)],
        fallback: ["sip:127.0.0.21:5060"],
      });
      assert.deepEqual(await chooser.candidatesFor("dialog", "c1"), []);
      const s = chooser.stats();
      assert.deepEqual(
        s.monitors.map((m) => [m.noProxy, m.failures, m.up]),
        [[1, 0, true]],
      );
      assert.equal(s.fallbackLists, 0);
      assert.equal(s.emptyLists, 1);

      const { chooser: two } = chooserWith({ monitors: [dnsMonitorOf(empty), empty.httpUrl, dns] });
      assert.equal((await two.candidatesFor("dialog", "c2"))[0]!.id, "p2");
      assert.deepEqual(
        two.stats().monitors.map((m) => m.noProxy),
        [1, 1, 0],
        "SERVFAIL and 503 alike",
      );
    } finally {
      await empty.stop();
    }
  });

  it("stop() aborts a DNS query under way and leaves no socket or timer open", async () => {
    const baseline = await openHandles();
    const hole = await udpBlackHole();
    const { chooser } = chooserWith(
      { monitors: [hole.monitor], selectTimeoutMs: 10_000 },
      systemClock,
    );
    const queried = hole.queried();
    const pending = chooser.candidatesFor("dialog", "c1");
    await queried;
    let stopped = false;
    const stopping = chooser.stop().then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(stopped, true, "stop() does not wait out the timeout");
    await stopping;
    assert.deepEqual(await pending, []);
    assert.equal(chooser.stats().monitors[0]!.failures, 0, "a stop is no monitor failure");
    await hole.close();
    assert.deepEqual(await openHandles(), baseline);
  });
});

describe("gateway proxy chooser - dns: answers off the monitor's usual shape", () => {
  after(async () => {
    for (const c of choosers.splice(0)) await c.stop();
  });

  // RFC 2782: the lowest priority first; a target without glue has its A asked of the same
  // server; a target outside the zone is known by its URI.
  it("orders by priority, asks a target's A when the answer lacks it, names a foreign target by its URI, ignores a stray answer", async () => {
    const server = await scriptedDns((query) => {
      const q = query.questions![0]!;
      if (q.type === "SRV") {
        return [
          // A response with another id (spoofed or stray) is not taken for ours.
          responseTo(query, { id: ((query.id ?? 0) + 1) & 0xffff }),
          responseTo(query, {
            answers: [
              {
                name: q.name,
                type: "SRV",
                ttl: 2,
                data: { priority: 20, weight: 50, port: 5070, target: "edge.example.net" },
              },
              {
                name: q.name,
                type: "SRV",
                ttl: 2,
                data: { priority: 10, weight: 0, port: 5080, target: "P7.sipsteer.test" },
              },
              {
                name: q.name,
                type: "SRV",
                ttl: 2,
                data: { priority: 20, weight: 50, port: 5090, target: "." },
              },
            ],
            additionals: [{ name: "edge.example.net", type: "A", ttl: 2, data: "127.0.0.31" }],
          }),
        ];
      }
      if (q.type === "A" && q.name.toLowerCase() === "p7.sipsteer.test") {
        return [
          responseTo(query, { answers: [{ name: q.name, type: "A", ttl: 2, data: "127.0.0.17" }] }),
        ];
      }
      return [responseTo(query)];
    });
    try {
      const { chooser } = chooserWith({ monitors: [server.monitor] });
      assert.deepEqual(await chooser.candidatesFor("dialog", "c1"), [
        {
          id: "p7",
          uri: "sip:127.0.0.17:5080",
          target: { protocol: "udp", address: "127.0.0.17", port: 5080 },
          via: "monitor",
        },
        {
          id: "sip:127.0.0.31:5070",
          uri: "sip:127.0.0.31:5070",
          target: { protocol: "udp", address: "127.0.0.31", port: 5070 },
          via: "monitor",
        },
      ]);
      assert.deepEqual(server.asked(), [
        "SRV _sip._udp.sipsteer.test",
        "A P7.sipsteer.test",
        "AAAA P7.sipsteer.test",
      ]);
    } finally {
      await server.close();
    }
  });

  it("an answer with no usable target is the monitor's failure and the fallback is used", async () => {
    const server = await scriptedDns((query) => {
      const q = query.questions![0]!;
      if (q.type !== "SRV") return [responseTo(query, { rcode: 3 })]; // NXDOMAIN
      return [
        responseTo(query, {
          answers: [
            {
              name: q.name,
              type: "SRV",
              ttl: 2,
              data: { priority: 10, weight: 1, port: 5060, target: "p8.sipsteer.test" },
            },
          ],
        }),
      ];
    });
    try {
      const { chooser, lines } = chooserWith({
        monitors: [server.monitor],
        fallback: [{ id: "p1", uri: "sip:127.0.0.11:5060" }],
      });
      assert.deepEqual(ids(await chooser.candidatesFor("dialog", "c1")), ["p1"]);
      const s = chooser.stats();
      assert.equal(s.monitors[0]!.failures, 1);
      assert.equal(s.fallbackLists, 1);
      const warned = lines.find((l) => l.msg === "monitor failed; asking the next");
      assert.match(String(warned?.why), /no usable SRV target .*p8\.sipsteer\.test \(no address\)/);
    } finally {
      await server.close();
    }
  });
});
