// The monitor's own collection (issue 5, collection modes) against REAL proxies on loopback:
// poll (GET /load on an interval), stream (GET /load/stream held open), on-query (a select
// refreshes an old report first, within a bounded wait); and nothing left open after stop().
import assert from "node:assert/strict";
import { createServer as createHttpServer, type ServerResponse } from "node:http";
import { createServer, type Socket } from "node:net";
import { describe, test } from "node:test";
import {
  LoadPoller,
  Monitor,
  ProxyTable,
  parseMonitorConfig,
  type MonitorConfigInput,
  type ProxyListing,
} from "../../src/monitor/index.js";
import { Proxy } from "../../src/proxy/index.js";
import type { LoadReport } from "../../src/contracts/index.js";
import { silentLogger } from "../../src/sip/index.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { openHandles } from "../helpers/handles.js";
import { eventually } from "../helpers/eventually.js";
import { report as validReport } from "./reports.js";

const DOMAIN = "sipsteer.test";
const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const FAST_MS = 100;
/** A report interval so long that only a GET /load makes a new report. */
const SLOW_MS = 60_000;
const ON_QUERY_MAX_AGE_MS = 300;
const ON_QUERY_WAIT_MS = 200;
const PROBE_THRESHOLD = 2;

/** A proxy that pushes nowhere: the monitor must fetch its reports. */
function proxyConfig(id: string, intervalMs: number, httpPort = 0) {
  return {
    id,
    domains: [DOMAIN],
    listen: [{ protocol: "udp" as const, address: "127.0.0.1", port: 0 }],
    allowedDestinations: LOOPBACK,
    auth: { enabled: false },
    http: { address: "127.0.0.1", port: httpPort },
    report: { intervalMs, push: [] },
  };
}

async function http(url: string): Promise<{ status: number; json: () => unknown }> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, json: () => JSON.parse(text) };
}

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs`. */
async function listed(monitor: Monitor, id: string): Promise<ProxyListing | undefined> {
  const res = await http(`${monitor.httpUrl}/v1/proxies`);
  assert.equal(res.status, 200);
  return (res.json() as { proxies: ProxyListing[] }).proxies.find((p) => p.id === id);
}

async function select(monitor: Monitor): Promise<{ status: number; proxies: string[] }> {
  const res = await http(`${monitor.httpUrl}/v1/select`);
  if (res.status !== 200) return { status: res.status, proxies: [] };
  const answer = res.json() as { proxy: string; alternates: { proxy: string }[] };
  return { status: 200, proxies: [answer.proxy, ...answer.alternates.map((a) => a.proxy)] };
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

interface Fleet {
  readonly monitor: Monitor;
  /** pa is polled, pb streamed, pc refreshed on query. */
  readonly proxies: Proxy[];
}

/**
 * A monitor polling pa, streaming pb and refreshing pc on query, with pa and pb eligible. Stops
 * the monitor first (with its stream still held open), then the proxies, and checks that
 * nothing is left open.
 */
async function withFleet(body: (fleet: Fleet) => Promise<void>): Promise<void> {
  const proxies: Proxy[] = [];
  let monitor: Monitor | undefined;
  try {
    for (const [id, interval] of [
      ["pa", FAST_MS],
      ["pb", FAST_MS],
      ["pc", SLOW_MS],
    ] as const) {
      const proxy = new Proxy(proxyConfig(id, interval));
      proxies.push(proxy);
      await proxy.start();
    }
    const [a, b, c] = proxies as [Proxy, Proxy, Proxy];
    const config: MonitorConfigInput = {
      http: { address: "127.0.0.1", port: 0 },
      proxies: [
        { id: "pa", http: a.httpUrl, modes: ["poll"], pollIntervalMs: FAST_MS, pollTimeoutMs: 500 },
        { id: "pb", http: b.httpUrl, modes: ["stream"] },
        { id: "pc", http: c.httpUrl, modes: ["on-query"], onQueryMaxAgeMs: ON_QUERY_MAX_AGE_MS },
      ],
      onQueryWaitMs: ON_QUERY_WAIT_MS,
      streamRetryMs: 50,
      streamRetryMaxMs: 200,
      table: { probeThreshold: PROBE_THRESHOLD },
    };
    monitor = new Monitor(config);
    await monitor.start();
    const m = monitor;
    await eventually(
      async () =>
        (await listed(m, "pa"))?.eligible === true && (await listed(m, "pb"))?.eligible === true
          ? true
          : undefined,
      5000,
      "pa and pb eligible",
    );
    await body({ monitor, proxies });
  } finally {
    await monitor?.stop();
    for (const proxy of proxies) await proxy.stop();
  }
  assert.deepEqual(await openHandles(), {});
}

describe("monitor collection from real proxies: poll, stream, on-query", () => {
  test("a polled, a streamed and an on-query proxy all become eligible, each listed with its collection mode", async () => {
    await withFleet(async ({ monitor }) => {
      // Nothing has asked for pc yet: configured, no report.
      assert.equal((await listed(monitor, "pc"))?.state, "stale");
      assert.equal(monitor.collectorCounters().polls > 0, true);
      const answer = await select(monitor);
      assert.equal(answer.status, 200);
      assert.deepEqual([...answer.proxies].sort(), ["pa", "pb", "pc"]);
      const expected = { pa: "poll", pb: "stream", pc: "on-query" } as const;
      for (const [id, mode] of Object.entries(expected)) {
        const p = await listed(monitor, id);
        assert.equal(p?.eligible, true, id);
        assert.equal(p?.collection, mode, id);
        assert.equal(p?.origin, "config", id);
      }
      assert.ok(monitor.collectorCounters().streams.pb!.reports >= 1);
    });
  });

  test("admin add with a collection config polls and streams the new proxies at once; admin remove stops collecting them; a bad field is a 400 naming it", async () => {
    const token = "an-admin-token-of-this-test";
    const polled = new Proxy(proxyConfig("added-poll", SLOW_MS));
    const streamed = new Proxy(proxyConfig("added-stream", SLOW_MS));
    const monitor = new Monitor({
      http: { address: "127.0.0.1", port: 0 },
      adminToken: token,
      streamRetryMs: 50,
      streamRetryMaxMs: 200,
    });
    const admin = (method: string, path: string, body?: unknown) =>
      fetch(`${monitor.httpUrl}/v1/admin/proxies${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    try {
      await polled.start();
      await streamed.start();
      await monitor.start();
      const bad = await admin("POST", "", {
        id: "x",
        http: polled.httpUrl,
        modes: ["poll"],
        pollIntervalMs: -1,
      });
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { error: string }).error, /^proxy\.pollIntervalMs: /);
      assert.equal(monitor.table.size, 0, "a refused add adds nothing");

      const addPoll = await admin("POST", "", {
        id: "added-poll",
        http: polled.httpUrl,
        modes: ["poll"],
        pollIntervalMs: FAST_MS,
      });
      assert.equal(addPoll.status, 201);
      await addPoll.body?.cancel();
      const addStream = await admin("POST", "", {
        id: "added-stream",
        http: streamed.httpUrl,
        modes: ["stream"],
      });
      assert.equal(addStream.status, 201);
      await addStream.body?.cancel();
      const again = await admin("POST", "", "added-poll");
      assert.equal(again.status, 409);
      await again.body?.cancel();
      // Their own reports come a minute apart: eligible only through the monitor's requests.
      await eventually(
        async () =>
          (await listed(monitor, "added-poll"))?.collection === "poll" &&
          (await listed(monitor, "added-stream"))?.collection === "stream"
            ? true
            : undefined,
        5000,
        "both added proxies collected",
      );
      assert.equal((await listed(monitor, "added-poll"))?.origin, "admin");

      for (const id of ["added-poll", "added-stream"]) {
        const removed = await admin("DELETE", `/${id}`);
        assert.equal(removed.status, 204);
        await removed.body?.cancel();
      }
      const polls = monitor.collectorCounters().polls;
      await new Promise((r) => setTimeout(r, FAST_MS * 4));
      assert.equal(monitor.collectorCounters().polls, polls, "no poll after the remove");
      assert.deepEqual(monitor.collectorCounters().streams, {}, "no stream held");
      assert.equal(await listed(monitor, "added-poll"), undefined, "not joined again");
      assert.equal(await listed(monitor, "added-stream"), undefined, "not joined again");
    } finally {
      await monitor.stop();
      await polled.stop();
      await streamed.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });

  test("a streamed proxy that stops is down at once through the stream's close; the monitor reconnects and takes its successor on the same port", async () => {
    await withFleet(async ({ monitor, proxies }) => {
      const b = proxies[1]!;
      const port = portOf(b.httpUrl);
      const downs: { reason?: string }[] = [];
      monitor.table.on("state", (e) => {
        if (e.proxy === "pb" && e.kind === "down") downs.push(e);
      });
      const oldBoot = (await listed(monitor, "pb"))!.boot;
      await b.stop();
      // Down, not merely stale: health went down on the close, before staleness could.
      const down = await eventually(
        async () => {
          const p = await listed(monitor, "pb");
          return p?.health === "down" ? p : undefined;
        },
        2000,
        "pb down",
      );
      assert.equal(down.state, "down");
      assert.match(downs[0]?.reason ?? "", /report stream closed/);
      for (let i = 0; i < 10; i++) assert.ok(!(await select(monitor)).proxies.includes("pb"));
      await eventually(
        async () => (monitor.collectorCounters().streams.pb!.reconnects >= 2 ? true : undefined),
        3000,
        "reconnect attempts",
      );
      const successor = new Proxy(proxyConfig("pb", FAST_MS, port));
      proxies[1] = successor;
      await successor.start();
      const back = await eventually(
        async () => {
          const p = await listed(monitor, "pb");
          return p?.eligible === true ? p : undefined;
        },
        5000,
        "pb eligible again",
      );
      assert.equal(back.collection, "stream");
      assert.notEqual(back.boot, oldBoot);
      // monitor.stop() in withFleet now runs with this stream held open.
    });
  });

  test(`a polled proxy that stops is down after ${PROBE_THRESHOLD} failed polls and is no longer selected`, async () => {
    await withFleet(async ({ monitor, proxies }) => {
      const downs: { reason?: string }[] = [];
      monitor.table.on("state", (e) => {
        if (e.proxy === "pa" && e.kind === "down") downs.push(e);
      });
      await proxies[0]!.stop();
      await eventually(
        async () => ((await listed(monitor, "pa"))?.health === "down" ? true : undefined),
        3000,
        "pa down",
      );
      assert.match(
        downs[0]?.reason ?? "",
        new RegExp(`^${PROBE_THRESHOLD} probes failed: GET /load`),
      );
      for (let i = 0; i < 10; i++) assert.ok(!(await select(monitor)).proxies.includes("pa"));
    });
  });

  test("on-query: a select after the report aged past its limit fetches a fresh one first; a fresh one is not fetched again", async () => {
    await withFleet(async ({ monitor, proxies }) => {
      const c = proxies[2]!;
      assert.ok((await select(monitor)).proxies.includes("pc"));
      const first = (await listed(monitor, "pc"))!;
      assert.equal(first.collection, "on-query");
      // Within the age limit: answered from what is known, no GET /load.
      const seqBefore = first.seq!;
      await select(monitor);
      assert.equal((await listed(monitor, "pc"))!.seq, seqBefore);
      await new Promise((r) => setTimeout(r, ON_QUERY_MAX_AGE_MS + 100));
      assert.ok((await select(monitor)).proxies.includes("pc"));
      const after = (await listed(monitor, "pc"))!;
      assert.ok(after.seq! > seqBefore, `seq ${after.seq} after ${seqBefore}`);
      assert.equal(after.collection, "on-query");
      assert.ok(after.report_age_ms! < ON_QUERY_MAX_AGE_MS);
      // The proxy's own reports come once a minute: only the monitor's GET /load made that one.
      assert.equal(after.boot, first.boot);
      assert.equal(c.config.id, "pc");
    });
  });

  test("on-query: a select answers within the bounded wait when the proxy accepts connections and never answers", async () => {
    // A black hole: connections are accepted and held, nothing is ever written.
    const held = new Set<Socket>();
    const blackHole = createServer((socket) => {
      held.add(socket);
      socket.on("close", () => held.delete(socket));
    });
    await new Promise<void>((r) => blackHole.listen(0, "127.0.0.1", () => r()));
    const address = blackHole.address();
    assert.ok(address !== null && typeof address === "object");
    const monitor = new Monitor({
      http: { address: "127.0.0.1", port: 0 },
      proxies: [
        {
          id: "pd",
          http: `http://127.0.0.1:${address.port}`,
          modes: ["on-query"],
          pollTimeoutMs: 10_000,
        },
      ],
      onQueryWaitMs: ON_QUERY_WAIT_MS,
    });
    try {
      await monitor.start();
      const startedAt = performance.now();
      const answer = await select(monitor);
      const tookMs = performance.now() - startedAt;
      // Nothing is known of pd: the answer says so rather than hanging.
      assert.equal(answer.status, 503);
      assert.ok(tookMs >= ON_QUERY_WAIT_MS - 20, `answered after ${tookMs} ms`);
      assert.ok(tookMs < ON_QUERY_WAIT_MS + 1000, `answered after ${tookMs} ms`);
      assert.equal(held.size, 1);
      // A second select joins the poll in flight instead of opening another.
      await select(monitor);
      assert.equal(monitor.collectorCounters().polls, 1);
    } finally {
      // Stopped with the poll still in flight: it is aborted, not left open.
      await monitor.stop();
      for (const socket of held) socket.destroy();
      await new Promise<void>((r) => blackHole.close(() => r()));
    }
    assert.deepEqual(await openHandles(), {});
  });
});

describe("monitor collection: modes mixed on one proxy", () => {
  test("poll and stream together: a report that comes both ways is taken once and never refused as a replay", async () => {
    const proxy = new Proxy(proxyConfig("pm", FAST_MS));
    let monitor: Monitor | undefined;
    try {
      await proxy.start();
      monitor = new Monitor({
        http: { address: "127.0.0.1", port: 0 },
        proxies: [
          { id: "pm", http: proxy.httpUrl, modes: ["poll", "stream", "push"], pollIntervalMs: 30 },
        ],
      });
      await monitor.start();
      const m = monitor;
      await eventually(
        async () => ((await listed(m, "pm"))?.eligible === true ? true : undefined),
        5000,
        "pm eligible",
      );
      await new Promise((r) => setTimeout(r, 500));
      const p = (await listed(monitor, "pm"))!;
      assert.ok(p.collection === "poll" || p.collection === "stream", String(p.collection));
      assert.equal(p.reports_refused, 0);
      assert.equal(monitor.table.counters().refused["old-seq"], 0);
      assert.ok(monitor.collectorCounters().polls >= 5);
      assert.ok(monitor.collectorCounters().streams.pm!.reports >= 5);
    } finally {
      await monitor?.stop();
      await proxy.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });
});

describe("monitor config: configured proxies and their collection", () => {
  test("ids alone stay valid (push only); objects get defaults", () => {
    const plain = parseMonitorConfig({ proxies: ["p1", "p2"] });
    assert.deepEqual(plain.proxies, ["p1", "p2"]);
    const mixed = parseMonitorConfig({
      proxies: ["p1", { id: "p2", http: "http://127.0.0.1:9060/", modes: ["poll", "push"] }],
    });
    assert.deepEqual(mixed.proxies[1], {
      id: "p2",
      adapter: "sipsteer",
      http: "http://127.0.0.1:9060",
      modes: ["poll", "push"],
      pollIntervalMs: 250,
      pollTimeoutMs: 1000,
      onQueryMaxAgeMs: 1000,
    });
    assert.equal(mixed.onQueryWaitMs, 200);
    // A parsed config parses again to the same.
    assert.deepEqual(parseMonitorConfig(mixed), mixed);
  });

  test("bad collection settings stop start-up naming the field", () => {
    const cases: [unknown, RegExp][] = [
      [{ proxies: [{ id: "p1", modes: ["poll"] }] }, /^monitor\.proxies\.0\.http: /],
      [{ proxies: [{ id: "p1", http: "ftp://x" }] }, /^monitor\.proxies\.0\.http: /],
      [
        { proxies: [{ id: "p1", http: "http://127.0.0.1:1", modes: ["carrier"] }] },
        /^monitor\.proxies\.0\.modes\.0: /,
      ],
      [
        { proxies: [{ id: "p1", http: "http://127.0.0.1:1", pollIntervalMs: -5 }] },
        /^monitor\.proxies\.0\.pollIntervalMs: /,
      ],
      [{ proxies: ["p1", { id: "p1" }] }, /^monitor\.proxies\.1: duplicate p1/],
      [{ onQueryWaitMs: -1 }, /^monitor\.onQueryWaitMs: /],
    ];
    for (const [input, message] of cases) {
      assert.throws(() => parseMonitorConfig(input), { message }, JSON.stringify(input));
    }
  });
});

// ---- the poller's timing on a fake clock, against a scripted /load ------------------------------

function report(seq: number): LoadReport {
  return validReport("px", {
    boot: "b1",
    seq,
    at: Date.now(),
    interval: 60_000,
    uris: { udp: "sip:127.0.0.99:5060" },
  });
}

/** Lets the loopback requests and their promises run; the fake clock does not move. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("LoadPoller on a fake clock", () => {
  test("polls on the clock, one request in flight per proxy; timeout, bad status and bad JSON are failed probes", async () => {
    const held: ServerResponse[] = [];
    let mode: "hold" | "report" | "500" | "garbage" = "hold";
    let requests = 0;
    let seq = 0;
    const server = createHttpServer((_req, res) => {
      requests++;
      if (mode === "hold") held.push(res);
      else if (mode === "500") res.writeHead(500).end("no");
      else if (mode === "garbage") res.writeHead(200).end("{not json");
      else res.writeHead(200).end(JSON.stringify(report(++seq)));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const address = server.address();
    assert.ok(address !== null && typeof address === "object");
    const clock = new FakeClock();
    const table = new ProxyTable({ clock, config: { proxies: ["px"], probeThreshold: 1 } });
    const poller = new LoadPoller({ table, clock, log: silentLogger });
    poller.add({
      id: "px",
      http: `http://127.0.0.1:${address.port}`,
      intervalMs: 100,
      timeoutMs: 1000,
    });
    try {
      poller.start();
      clock.tick(0);
      await until(() => requests === 1, "the first poll");
      // Held: more intervals and an on-query poll join it rather than open another.
      clock.tick(500);
      void poller.pollNow("px", "on-query");
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(requests, 1);
      assert.equal(poller.polls, 1);
      // Its timeout, on the fake clock, is a failed probe (k = 1: down).
      clock.tick(500);
      await until(() => table.view("px")?.health === "down", "px down on the timeout");
      // The next poll an interval later answers: up again, the report taken as polled.
      mode = "report";
      clock.tick(100);
      await until(() => table.view("px")?.health === "up", "px up");
      assert.equal(table.view("px")?.via, "poll");
      assert.equal(requests, 2);
      mode = "500";
      clock.tick(100);
      await until(() => table.view("px")?.health === "down", "px down on a 500");
      mode = "report";
      clock.tick(100);
      await until(() => table.view("px")?.health === "up", "px up again");
      mode = "garbage";
      clock.tick(100);
      await until(() => table.view("px")?.health === "down", "px down on bad JSON");
      assert.equal(requests, 5);
    } finally {
      await poller.stop();
      table.dispose();
      for (const res of held) res.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
    assert.equal(clock.pending, 0);
    assert.deepEqual(await openHandles(), {});
  });
});
