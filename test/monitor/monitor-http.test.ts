// The monitor's HTTP front and push intake (issue 5) against REAL proxies on loopback: signed
// pushes over HTTP and UDP, GET /v1/select, /v1/proxies, /v1/events, the admin calls, /metrics,
// /healthz and /readyz, refusals of bad pushes, and nothing left open after stop().
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { get } from "node:http";
import { describe, test } from "node:test";
import {
  signatureHeader,
  signedDatagram,
  type LoadReport,
  type SigningKey,
} from "../../src/contracts/index.js";
import { Monitor, type MonitorConfigInput, type ProxyListing } from "../../src/monitor/index.js";
import { Proxy } from "../../src/proxy/index.js";
import type { ProxyConfigInput } from "../../src/proxy/proxy-config.js";
import { openHandles } from "../helpers/handles.js";
import { eventually } from "../helpers/eventually.js";

const DOMAIN = "sipsteer.test";
const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const KEY: SigningKey = { id: "k1", secret: "a-shared-report-secret" };
const OTHER_KEY: SigningKey = { id: "k2", secret: "another-report-secret" };
const MONITOR_TOKEN = "monitor-admin-token-0123456789";
const PROXY_TOKEN = "proxy-admin-token-0123456789";
const INTERVAL_MS = 100;

function monitorConfig(over: Partial<MonitorConfigInput> = {}): MonitorConfigInput {
  return {
    http: { address: "127.0.0.1", port: 0 },
    udpPush: { address: "127.0.0.1", port: 0 },
    keys: [KEY],
    adminToken: MONITOR_TOKEN,
    ...over,
  };
}

function proxyConfig(id: string, push: string, over: Partial<ProxyConfigInput> = {}) {
  return {
    id,
    domains: [DOMAIN],
    listen: [{ protocol: "udp" as const, address: "127.0.0.1", port: 0 }],
    allowedDestinations: LOOPBACK,
    auth: { enabled: false },
    http: { address: "127.0.0.1", port: 0 },
    report: { intervalMs: INTERVAL_MS, push: [push], key: KEY },
    adminToken: PROXY_TOKEN,
    ...over,
  };
}

// ---- HTTP and polling -------------------------------------------------------------------------

async function http(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; text: string; json: () => unknown }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
}

async function proxies(monitor: Monitor): Promise<ProxyListing[]> {
  const res = await http(`${monitor.httpUrl}/v1/proxies`);
  assert.equal(res.status, 200);
  return (res.json() as { proxies: ProxyListing[] }).proxies;
}

async function listed(monitor: Monitor, id: string): Promise<ProxyListing | undefined> {
  return (await proxies(monitor)).find((p) => p.id === id);
}

/** A counter or gauge line of /metrics, 0 when absent. */
async function metric(monitor: Monitor, name: string, labels = ""): Promise<number> {
  const text = (await http(`${monitor.httpUrl}/metrics`)).text;
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.split(" ")[1]);
}

function udpUri(proxy: Proxy): string {
  const l = proxy.listeners.find((x) => x.protocol === "udp")!;
  return `sip:${l.address}:${l.port}`;
}

async function adminCall(
  monitor: Monitor,
  method: "POST" | "DELETE",
  path: string,
  token: string | null = MONITOR_TOKEN,
  body?: unknown,
) {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  return http(`${monitor.httpUrl}/v1/admin${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// ---- pushes of our own --------------------------------------------------------------------------

function fakeReport(proxy: string, fields: Partial<LoadReport> = {}): LoadReport {
  return {
    v: 1,
    proxy,
    boot: "test-boot",
    seq: 1,
    at: Date.now(),
    interval: 60_000,
    state: "active",
    calls: 0,
    registrations: 0,
    transactions: 0,
    media: 0,
    cps: 0,
    cpu: 0,
    elu: 0,
    store: "ok",
    capacity: { calls: 0, media: 0 },
    uris: { udp: `sip:127.0.0.99:5060` },
    ...fields,
  };
}

function pushHttp(
  monitor: Monitor,
  body: Buffer,
  signature: string | undefined,
): Promise<{ status: number; text: string; json: () => unknown }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (signature !== undefined) headers["sipsteer-signature"] = signature;
  return http(`${monitor.httpUrl}/v1/reports`, { method: "POST", body, headers });
}

async function sendDatagrams(monitor: Monitor, datagrams: Buffer[]): Promise<void> {
  const socket = createSocket("udp4");
  const { address, port } = monitor.udpPushAddress!;
  for (const d of datagrams) {
    await new Promise<void>((resolve, reject) =>
      socket.send(d, port, address, (e) => (e ? reject(e) : resolve())),
    );
  }
  await new Promise<void>((r) => socket.close(() => r()));
}

// ---- Server-Sent Events -------------------------------------------------------------------------

interface MonitorEvent {
  readonly event: string;
  readonly data: Record<string, unknown>;
}

interface EventClient {
  readonly events: MonitorEvent[];
  readonly ended: Promise<void>;
  close(): void;
}

function openEvents(url: string): Promise<EventClient> {
  return new Promise((resolve, reject) => {
    const events: MonitorEvent[] = [];
    const req = get(url, (res) => {
      if (
        res.statusCode !== 200 ||
        !/^text\/event-stream/.test(res.headers["content-type"] ?? "")
      ) {
        req.destroy();
        reject(new Error(`events answered ${res.statusCode}`));
        return;
      }
      const ended = new Promise<void>((r) => res.once("close", () => r()));
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = "message";
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trimStart();
          }
          if (data !== "")
            events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
        }
      });
      res.on("error", () => undefined);
      resolve({ events, ended, close: () => req.destroy() });
    });
    req.on("error", reject);
  });
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const result = await Promise.race([promise.then(() => true as const), timeout]);
  clearTimeout(timer);
  return result;
}

// ---- a monitor with three real proxies --------------------------------------------------------

interface Fleet {
  readonly monitor: Monitor;
  /** p1 and p2 push over HTTP, p3 over UDP. */
  readonly proxies: readonly Proxy[];
}

/**
 * Runs `body` with a started monitor and three proxies pushing to it, all eligible; stops them
 * all (the proxies first) and checks that nothing is left open.
 */
async function withFleet(body: (fleet: Fleet) => Promise<void>): Promise<void> {
  const monitor = new Monitor(monitorConfig());
  const started: Proxy[] = [];
  try {
    await monitor.start();
    const reports = `${monitor.httpUrl}/v1/reports`;
    const configs = [
      proxyConfig("p1", reports, {
        listen: [
          { protocol: "udp", address: "127.0.0.1", port: 0 },
          { protocol: "tcp", address: "127.0.0.1", port: 0 },
        ],
      }),
      proxyConfig("p2", reports),
      proxyConfig("p3", monitor.udpPushUrl!),
    ];
    for (const config of configs) {
      const proxy = new Proxy(config);
      started.push(proxy);
      await proxy.start();
    }
    await eventually(
      async () =>
        (await proxies(monitor)).filter((p) => p.eligible).length === 3 ? true : undefined,
      5000,
      "three eligible proxies",
    );
    await body({ monitor, proxies: started });
  } finally {
    for (const proxy of started) await proxy.stop();
    await monitor.stop();
  }
  assert.deepEqual(await openHandles(), {});
}

describe("monitor HTTP front with three real proxies", () => {
  test("before any report: /healthz alive, /readyz and /v1/select 503 with Retry-After", async () => {
    const monitor = new Monitor(monitorConfig({ proxies: ["p1"] }));
    try {
      await monitor.start();
      const health = await http(`${monitor.httpUrl}/healthz`);
      assert.equal(health.status, 200);
      assert.deepEqual(health.json(), { status: "alive" });
      assert.equal((await http(`${monitor.httpUrl}/readyz`)).status, 503);
      const select = await http(`${monitor.httpUrl}/v1/select`);
      assert.equal(select.status, 503);
      assert.equal(select.headers.get("retry-after"), "1");
      assert.equal(typeof (select.json() as { error: unknown }).error, "string");
      const [p1] = await proxies(monitor);
      assert.equal(p1?.id, "p1");
      assert.equal(p1?.state, "stale");
      assert.equal(p1?.eligible, false);
      assert.equal(
        await metric(monitor, "sipsteer_monitor_selects_unanswered_total", '{transport="udp"}'),
        1,
      );
    } finally {
      await monitor.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });

  test("three pushing proxies (two over HTTP, one over UDP) become eligible; /v1/proxies lists how each reports", async () => {
    await withFleet(async ({ monitor, proxies: fleet }) => {
      const list = await proxies(monitor);
      assert.deepEqual(list.map((p) => p.id).sort(), ["p1", "p2", "p3"]);
      for (const p of list) {
        assert.equal(p.state, "eligible");
        assert.equal(p.health, "up");
        assert.equal(p.collection, "push");
        assert.equal(p.origin, "joined");
        assert.equal(typeof p.workload, "number");
        assert.equal(p.calls, 0);
        assert.equal(p.registrations, 0);
        assert.ok(p.report_age_ms !== null && p.report_age_ms < 3 * INTERVAL_MS + 500);
        assert.equal(p.uris.udp, udpUri(fleet.find((x) => x.config.id === p.id)!));
      }
      assert.equal(list.find((p) => p.id === "p1")!.pushed_over, "http");
      assert.equal(list.find((p) => p.id === "p2")!.pushed_over, "http");
      assert.equal(list.find((p) => p.id === "p3")!.pushed_over, "udp");
      assert.equal((await http(`${monitor.httpUrl}/readyz`)).status, 200);
    });
  });

  test("GET /v1/select answers per DESIGN.md: the chosen proxy's UDP URI, age, ttl, alternates; 400 for a bad transport", async () => {
    await withFleet(async ({ monitor, proxies: fleet }) => {
      const uriOf = new Map(fleet.map((p) => [p.config.id, udpUri(p)]));
      // The plain forms are answered before fastify routes them, others by the route: alike.
      const forms = ["/v1/select", "/v1/select?transport=udp", "/v1/select?transport=udp&v=1"];
      for (const url of forms) {
        const res = await http(`${monitor.httpUrl}${url}`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("cache-control"), "no-store", url);
        assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8", url);
        const answer = res.json() as {
          proxy: string;
          uri: string;
          workload: number;
          age_ms: number;
          ttl: number;
          alternates: { proxy: string; uri: string; workload: number }[];
        };
        assert.deepEqual(Object.keys(answer).sort(), [
          "age_ms",
          "alternates",
          "proxy",
          "ttl",
          "uri",
          "workload",
        ]);
        assert.equal(answer.uri, uriOf.get(answer.proxy));
        assert.ok(answer.workload >= 0 && answer.workload <= 1);
        assert.ok(answer.age_ms >= 0 && answer.age_ms < 3 * INTERVAL_MS + 500);
        assert.ok(answer.ttl >= 1 && answer.ttl <= 5);
        assert.equal(answer.alternates.length, 2);
        for (const alt of answer.alternates) assert.equal(alt.uri, uriOf.get(alt.proxy));
        assert.deepEqual([answer.proxy, ...answer.alternates.map((a) => a.proxy)].sort(), [
          "p1",
          "p2",
          "p3",
        ]);
      }
      // Only p1 listens on TCP; nobody on WebSocket.
      const tcp = (await http(`${monitor.httpUrl}/v1/select?transport=tcp`)).json() as {
        proxy: string;
        uri: string;
        alternates: unknown[];
      };
      assert.equal(tcp.proxy, "p1");
      assert.match(tcp.uri, /^sip:127\.0\.0\.1:\d+;transport=tcp$/);
      assert.deepEqual(tcp.alternates, []);
      const ws = await http(`${monitor.httpUrl}/v1/select?transport=ws`);
      assert.equal(ws.status, 503);
      assert.equal(ws.headers.get("retry-after"), "1");
      const bad = await http(`${monitor.httpUrl}/v1/select?transport=carrier-pigeon`);
      assert.equal(bad.status, 400);
      assert.equal((bad.json() as { reason: string }).reason, "bad-transport");
      const chosen = (await proxies(monitor)).reduce((n, p) => n + p.times_chosen, 0);
      assert.equal(chosen, 4);
    });
  });

  test("a proxy drained through its own admin API is no longer selected; undrained it comes back", async () => {
    await withFleet(async ({ monitor, proxies: fleet }) => {
      const p2 = fleet[1]!;
      const drain = await http(`${p2.httpUrl}/admin/drain`, {
        method: "POST",
        headers: { authorization: `Bearer ${PROXY_TOKEN}` },
      });
      assert.equal(drain.status, 200);
      await eventually(
        async () => ((await listed(monitor, "p2"))?.state === "draining" ? true : undefined),
        3000,
        "p2 draining at the monitor",
      );
      for (let i = 0; i < 30; i++) {
        const answer = (await http(`${monitor.httpUrl}/v1/select`)).json() as { proxy: string };
        assert.notEqual(answer.proxy, "p2");
      }
      await http(`${p2.httpUrl}/admin/undrain`, {
        method: "POST",
        headers: { authorization: `Bearer ${PROXY_TOKEN}` },
      });
      await eventually(
        async () => ((await listed(monitor, "p2"))?.eligible === true ? true : undefined),
        3000,
        "p2 eligible again",
      );
    });
  });

  test("a stopped proxy turns stale and is no longer selected; /v1/events streams report events, then its state event", async () => {
    await withFleet(async ({ monitor, proxies: fleet }) => {
      const events = await openEvents(`${monitor.httpUrl}/v1/events`);
      try {
        await eventually(
          async () => {
            const seen = new Set(
              events.events.filter((e) => e.event === "report").map((e) => e.data.proxy),
            );
            return seen.size === 3 ? true : undefined;
          },
          3000,
          "report events from all three proxies",
        );
        const report = events.events.find((e) => e.event === "report")!.data;
        for (const field of [
          "proxy",
          "via",
          "boot",
          "seq",
          "workload",
          "calls",
          "registrations",
          "age_ms",
          "at",
        ]) {
          assert.ok(field in report, `report event has ${field}`);
        }
        await fleet[0]!.stop();
        // 3 missed 100 ms intervals; a loose margin for a busy machine.
        const stale = await eventually(
          async () =>
            events.events.find(
              (e) => e.event === "state" && e.data.proxy === "p1" && e.data.kind === "stale",
            ),
          5000,
          "a stale event for p1",
        );
        assert.equal(stale.data.eligible, false);
        assert.equal((await listed(monitor, "p1"))?.state, "stale");
        for (let i = 0; i < 30; i++) {
          const answer = (await http(`${monitor.httpUrl}/v1/select`)).json() as {
            proxy: string;
            alternates: { proxy: string }[];
          };
          assert.notEqual(answer.proxy, "p1");
          assert.ok(answer.alternates.every((a) => a.proxy !== "p1"));
        }
        assert.ok(
          (await metric(monitor, "sipsteer_monitor_state_changes_total", '{kind="stale"}')) >= 1,
        );
      } finally {
        events.close();
      }
      await events.ended;
    });
  });

  test("bad HTTP pushes (bad signature, unknown key, unsigned, garbage JSON, not a report, replayed seq, outside the clock window, too large) are refused 4xx, counted, and change nothing", async () => {
    await withFleet(async ({ monitor }) => {
      const good = Buffer.from(JSON.stringify(fakeReport("x9", { seq: 5 })));
      assert.equal((await pushHttp(monitor, good, signatureHeader(good, KEY))).status, 204);
      const before = monitor.table.view("x9")!;
      assert.equal(before.report?.seq, 5);

      const signedBy = (body: Buffer, key: SigningKey) => signatureHeader(body, key);
      const newer = Buffer.from(JSON.stringify(fakeReport("x9", { seq: 6, calls: 50 })));
      const cases: {
        what: string;
        body: Buffer;
        sig: string | undefined;
        status: number;
        reason: string;
      }[] = [
        {
          what: "a bad signature",
          body: newer,
          sig: signedBy(newer, { id: KEY.id, secret: "not-the-right-secret" }),
          status: 401,
          reason: "bad-signature",
        },
        {
          what: "a tampered body",
          body: Buffer.from(newer.toString().replace('"calls":50', '"calls":51')),
          sig: signedBy(newer, KEY),
          status: 401,
          reason: "bad-signature",
        },
        {
          what: "an unknown key",
          body: newer,
          sig: signedBy(newer, OTHER_KEY),
          status: 401,
          reason: "unknown-key",
        },
        { what: "no signature", body: newer, sig: undefined, status: 401, reason: "unsigned" },
        { what: "a garbled header", body: newer, sig: "sig=xyz", status: 401, reason: "unsigned" },
        {
          what: "garbage JSON",
          body: Buffer.from("{not json"),
          sig: signedBy(Buffer.from("{not json"), KEY),
          status: 400,
          reason: "bad-json",
        },
      ];
      const notReport = Buffer.from(JSON.stringify({ proxy: "x9", hello: 1 }));
      cases.push({
        what: "not a report",
        body: notReport,
        sig: signedBy(notReport, KEY),
        status: 400,
        reason: "malformed",
      });
      const replay = Buffer.from(JSON.stringify(fakeReport("x9", { seq: 4, calls: 7 })));
      cases.push({
        what: "an older seq",
        body: replay,
        sig: signedBy(replay, KEY),
        status: 409,
        reason: "old-seq",
      });
      cases.push({
        what: "the same seq again",
        body: good,
        sig: signedBy(good, KEY),
        status: 409,
        reason: "old-seq",
      });
      const old = Buffer.from(
        JSON.stringify(fakeReport("x9", { seq: 9, at: Date.now() - 120_000 })),
      );
      cases.push({
        what: "outside the clock window",
        body: old,
        sig: signedBy(old, KEY),
        status: 422,
        reason: "clock-window",
      });
      const huge = Buffer.alloc(70 * 1024, 0x20);
      cases.push({
        what: "a body over 64 KB",
        body: huge,
        sig: signedBy(huge, KEY),
        status: 413,
        reason: "too-large",
      });

      for (const c of cases) {
        const res = await pushHttp(monitor, c.body, c.sig);
        assert.equal(res.status, c.status, c.what);
        const answer = res.json() as { error: unknown; reason: unknown };
        assert.equal(answer.reason, c.reason, c.what);
        assert.equal(typeof answer.error, "string", c.what);
      }
      const after = monitor.table.view("x9")!;
      assert.equal(after.report?.seq, 5);
      assert.equal(after.report?.calls, 0);
      assert.equal(after.accepted, before.accepted);
      // Nothing refused joined the table.
      assert.deepEqual((await proxies(monitor)).map((p) => p.id).sort(), ["p1", "p2", "p3", "x9"]);

      const refused = (reason: string, via: string) =>
        metric(
          monitor,
          "sipsteer_monitor_reports_refused_total",
          `{reason="${reason}",via="${via}"}`,
        );
      assert.equal(await refused("bad-signature", "push-http"), 2);
      assert.equal(await refused("unknown-key", "push-http"), 1);
      assert.equal(await refused("unsigned", "push-http"), 2);
      assert.equal(await refused("bad-json", "push-http"), 1);
      assert.equal(await refused("too-large", "push-http"), 1);
      assert.equal(await refused("malformed", "push"), 1);
      assert.equal(await refused("old-seq", "push"), 2);
      assert.equal(await refused("clock-window", "push"), 1);
    });
  });

  test("UDP pushes: garbage, bad signatures and unknown keys are ignored and counted; a signed one after them is taken", async () => {
    await withFleet(async ({ monitor }) => {
      const good = Buffer.from(JSON.stringify(fakeReport("x7")));
      const tampered = signedDatagram(good, KEY);
      tampered[tampered.length - 2] = 0x39;
      await sendDatagrams(monitor, [
        Buffer.from("hello"),
        Buffer.from("INVITE sip:bob@x SIP/2.0\r\n\r\n"),
        Buffer.alloc(0),
        Buffer.from(`${KEY.id} ${"0".repeat(64)}\n${good.toString()}`),
        signedDatagram(good, OTHER_KEY),
        signedDatagram(Buffer.from("{garbage"), KEY),
        tampered,
        signedDatagram(good, KEY),
      ]);
      await eventually(
        async () => ((await listed(monitor, "x7"))?.pushed_over === "udp" ? true : undefined),
        3000,
        "x7 joined over UDP",
      );
      const refused = (reason: string) =>
        metric(
          monitor,
          "sipsteer_monitor_reports_refused_total",
          `{reason="${reason}",via="push-udp"}`,
        );
      assert.equal(await refused("unsigned"), 3);
      assert.equal(await refused("bad-signature"), 2);
      assert.equal(await refused("unknown-key"), 1);
      assert.equal(await refused("bad-json"), 1);
      assert.equal(monitor.table.view("x7")?.accepted, 1);
    });
  });

  test("admin drain, undrain, add and remove need the bearer token; unknown ids get 404", async () => {
    await withFleet(async ({ monitor }) => {
      assert.equal((await adminCall(monitor, "POST", "/proxies/p1/drain", null)).status, 401);
      assert.equal(
        (await adminCall(monitor, "POST", "/proxies/p1/drain", "wrong-token-0123456789xx")).status,
        401,
      );
      assert.equal((await adminCall(monitor, "POST", "/proxies", null, { id: "p9" })).status, 401);
      assert.equal((await adminCall(monitor, "DELETE", "/proxies/p2", "x")).status, 401);
      assert.equal((await listed(monitor, "p1"))?.state, "eligible");

      const drained = await adminCall(monitor, "POST", "/proxies/p1/drain");
      assert.equal(drained.status, 200);
      assert.equal((drained.json() as ProxyListing).state, "draining");
      assert.equal((drained.json() as ProxyListing).admin_drained, true);
      for (let i = 0; i < 20; i++) {
        assert.notEqual(
          ((await http(`${monitor.httpUrl}/v1/select`)).json() as { proxy: string }).proxy,
          "p1",
        );
      }
      const undrained = await adminCall(monitor, "POST", "/proxies/p1/undrain");
      assert.equal(undrained.status, 200);
      assert.equal((undrained.json() as ProxyListing).eligible, true);

      const added = await adminCall(monitor, "POST", "/proxies", MONITOR_TOKEN, { id: "p9" });
      assert.equal(added.status, 201);
      assert.equal((added.json() as ProxyListing).origin, "admin");
      assert.equal((await listed(monitor, "p9"))?.state, "stale");
      assert.equal(
        (await adminCall(monitor, "POST", "/proxies", MONITOR_TOKEN, { id: "p9" })).status,
        409,
      );
      assert.equal(
        (await adminCall(monitor, "POST", "/proxies", MONITOR_TOKEN, { id: "" })).status,
        400,
      );
      assert.equal(
        (await adminCall(monitor, "POST", "/proxies", MONITOR_TOKEN, { nope: 1 })).status,
        400,
      );
      assert.equal((await adminCall(monitor, "DELETE", "/proxies/p9")).status, 204);
      assert.equal(await listed(monitor, "p9"), undefined);
      assert.equal((await adminCall(monitor, "DELETE", "/proxies/p9")).status, 404);
      assert.equal((await adminCall(monitor, "POST", "/proxies/nobody/drain")).status, 404);
      assert.equal((await adminCall(monitor, "POST", "/proxies/nobody/undrain")).status, 404);
      // A removed pushing proxy joins again with its next report.
      assert.equal((await adminCall(monitor, "DELETE", "/proxies/p2")).status, 204);
      await eventually(
        async () => ((await listed(monitor, "p2"))?.eligible === true ? true : undefined),
        3000,
        "p2 back after its next push",
      );
    });
  });

  test("admin calls are refused when no adminToken is configured", async () => {
    const monitor = new Monitor(monitorConfig({ adminToken: undefined, proxies: ["p1"] }));
    try {
      await monitor.start();
      assert.equal(
        (await adminCall(monitor, "POST", "/proxies/p1/drain", MONITOR_TOKEN)).status,
        401,
      );
      assert.equal((await adminCall(monitor, "POST", "/proxies/p1/drain", "")).status, 401);
      assert.equal((await adminCall(monitor, "DELETE", "/proxies/p1", MONITOR_TOKEN)).status, 401);
      assert.equal(monitor.table.view("p1")?.adminDrained, false);
    } finally {
      await monitor.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });

  test("/metrics counts accepted reports, state changes, selects per proxy and eligible proxies", async () => {
    await withFleet(async ({ monitor }) => {
      for (let i = 0; i < 6; i++) await http(`${monitor.httpUrl}/v1/select`);
      const res = await http(`${monitor.httpUrl}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
      assert.ok(
        (await metric(monitor, "sipsteer_monitor_reports_accepted_total", '{via="push"}')) >= 3,
      );
      assert.equal(
        await metric(monitor, "sipsteer_monitor_state_changes_total", '{kind="joined"}'),
        3,
      );
      assert.equal(await metric(monitor, "sipsteer_monitor_proxies_eligible"), 3);
      assert.equal(await metric(monitor, "sipsteer_monitor_proxies_known"), 3);
      let selects = 0;
      for (const id of ["p1", "p2", "p3"]) {
        selects += await metric(monitor, "sipsteer_monitor_selects_total", `{proxy="${id}"}`);
      }
      assert.equal(selects, 6);
      assert.match(res.text, /# TYPE sipsteer_monitor_reports_refused_total counter/);
    });
  });

  test("/v1/events: closed clients leave no listener; stop() ends an open stream and leaves nothing open", async () => {
    const monitor = new Monitor(monitorConfig());
    await monitor.start();
    const listeners = () =>
      monitor.table.listenerCount("report") + monitor.table.listenerCount("state");
    const baseline = listeners();
    const push = async (seq: number) => {
      const body = Buffer.from(JSON.stringify(fakeReport("x1", { seq })));
      assert.equal((await pushHttp(monitor, body, signatureHeader(body, KEY))).status, 204);
    };
    for (let i = 0; i < 15; i++) {
      const client = await openEvents(`${monitor.httpUrl}/v1/events`);
      await eventually(
        async () => (listeners() === baseline + 2 ? true : undefined),
        2000,
        "listeners added",
      );
      await push(i + 1);
      await eventually(
        async () =>
          client.events.some((e) => e.event === "report" && e.data.seq === i + 1)
            ? true
            : undefined,
        2000,
        `report event ${i + 1}`,
      );
      client.close();
      await client.ended;
      await eventually(
        async () => (listeners() === baseline ? true : undefined),
        2000,
        "listeners gone",
      );
    }
    const held = await openEvents(`${monitor.httpUrl}/v1/events`);
    await eventually(
      async () => (listeners() === baseline + 2 ? true : undefined),
      2000,
      "held stream",
    );
    const stopping = monitor.stop();
    assert.ok(await settlesWithin(stopping, 3000), "stop() returned with a held stream");
    assert.ok(await settlesWithin(held.ended, 1000), "the client saw the stream end");
    assert.deepEqual(await openHandles(), {});
  });

  test("nothing listens before start(); a taken UDP push port fails start() and leaves nothing open", async () => {
    const first = new Monitor(monitorConfig());
    assert.deepEqual(await openHandles(), {});
    assert.throws(() => first.httpUrl, /not started/);
    await first.start();
    const second = new Monitor(monitorConfig({ udpPush: first.udpPushAddress! }));
    await assert.rejects(second.start(), /EADDRINUSE/);
    await first.stop();
    assert.deepEqual(await openHandles(), {});
  });

  test("a bad monitor config throws naming the field", () => {
    const bad: [unknown, RegExp][] = [
      [{ keys: [{ id: "k1", secret: "short" }] }, /^RangeError: monitor\.keys\.0\.secret: /],
      [{ keys: [KEY, KEY] }, /^RangeError: monitor\.keys\.1\.id: duplicate k1/],
      [{ keys: [{ id: "bad id", secret: KEY.secret }] }, /^RangeError: monitor\.keys\.0\.id: /],
      [{ http: { address: "127.0.0.1", port: 70000 } }, /^RangeError: monitor\.http\.port: /],
      [{ udpPush: { address: "", port: 0 } }, /^RangeError: monitor\.udpPush\.address: /],
      [{ adminToken: "short" }, /^RangeError: monitor\.adminToken: /],
      [{ proxies: ["p1", "p1"] }, /^RangeError: monitor\.proxies\.1: duplicate p1/],
      [{ allowJoin: "yes" }, /^RangeError: monitor\.allowJoin: /],
      [
        { table: { staleAfterIntervals: -1 } },
        /^RangeError: monitor\.table\.staleAfterIntervals: /,
      ],
      [{ select: { policy: "round-robin" } }, /^RangeError: monitor\.select\.policy: /],
      [
        { workload: { terms: [{ metric: "cps", per: "capacity" }] } },
        /^RangeError: monitor\.workload\.terms\.0\.per: /,
      ],
      [{ reportBodyLimitBytes: 10 }, /^RangeError: monitor\.reportBodyLimitBytes: /],
    ];
    for (const [config, message] of bad) {
      assert.throws(
        () => new Monitor(config as MonitorConfigInput),
        (e: unknown) => message.test(String(e)),
      );
    }
    const ok = new Monitor(
      monitorConfig({ table: { staleAfterIntervals: 5 }, select: { policy: "literal" } }),
    );
    assert.equal(ok.table.config.staleAfterIntervals, 5);
    assert.equal(ok.table.config.clockWindowMs, 30_000);
    assert.equal(ok.selector.policy, "literal");
    assert.ok(Object.isFrozen(ok.config.keys[0]));
  });
});
