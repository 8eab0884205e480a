// The gateway's HTTP side (issue 9) over real HTTP on loopback: /healthz, /readyz following
// the status's `ready`, /status with every refusal reason in one place, /metrics in the
// Prometheus text format, and nothing left open after stop().
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  AUTH_REFUSAL_REASONS,
  GatewayFront,
  REFUSAL_REASONS,
  type GatewayStatus,
  type GatewayStatusBody,
} from "../../src/gateway/index.js";
import { silentLogger } from "../../src/sip/index.js";
import { openHandles } from "../helpers/handles.js";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A status with a distinct figure in each field, so that a swapped field shows. */
function sampleStatus(): Mutable<GatewayStatus> {
  return {
    id: "gw1",
    ready: true,
    access: {
      admitted: 120,
      refused: {
        "denied-address": 3,
        "not-allowed-address": 4,
        scanner: 5,
        rate: 6,
        flood: 7,
        "calls-per-user": 8,
      },
      trackedSources: 9,
      activeCalls: 2,
      topCallers: [{ user: "alice", calls: 2 }],
    },
    auth: { challenges: 11, accepted: 12, failures: 13, slowed: 14, refused: 15 },
    upstream: {
      pins: 16,
      pinnedByProxy: { p1: 10, p2: 6 },
      failuresByProxy: { p1: 17, p3: 18 },
      heldOff: ["p3"],
      monitorQueries: 19,
      monitorFailures: 20,
      fallbackLists: 1,
      emptyLists: 0,
      pinsEvicted: 0,
      pinsExpired: 0,
      monitors: [
        { url: "http://127.0.0.1:8080", up: true, queries: 15, failures: 16, noProxy: 0 },
        { url: "http://127.0.0.2:8080", up: false, queries: 4, failures: 4, noProxy: 0 },
      ],
    },
    forwarded: {
      registers: 21,
      dialogs: 22,
      other: 23,
      retries: 24,
      noProxy: 25,
      callsByProxy: { p1: 5, p2: 3 },
    },
    registrations: 26,
    dialogs: 27,
    transport: { received: 28, sent: 29, parseErrors: 30, connections: 31 },
  };
}

async function get(url: string): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(url);
  return {
    status: res.status,
    type: res.headers.get("content-type") ?? "",
    text: await res.text(),
  };
}

/** The value of one sample line of the metrics text (labels as written, gateway first). */
function sample(text: string, name: string, labels = ""): number | undefined {
  const series = `sipsteer_gateway_${name}{${labels === "" ? "" : `${labels},`}gateway="gw1"}`;
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Starts a front on a free loopback port, runs `body`, stops it, and checks nothing is open. */
async function withFront(
  status: () => GatewayStatus,
  body: (front: GatewayFront) => Promise<void>,
): Promise<void> {
  const baseline = await openHandles();
  const front = new GatewayFront({
    id: "gw1",
    listen: { host: "127.0.0.1", port: 0 },
    status,
    log: silentLogger,
  });
  await front.start();
  try {
    await body(front);
  } finally {
    await front.stop();
  }
  assert.deepEqual(await openHandles(), baseline);
}

describe("gateway HTTP front", () => {
  test("binds a free port on 127.0.0.1 and /healthz answers 200 {ok:true}", async () => {
    await withFront(sampleStatus, async (front) => {
      assert.match(front.httpUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(new URL(front.httpUrl).port, "0");
      const res = await get(`${front.httpUrl}/healthz`);
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.text), { ok: true });
    });
  });

  test("/readyz is 200 while the status says ready and 503 while it does not", async () => {
    const status = sampleStatus();
    await withFront(
      () => status,
      async (front) => {
        const ready = await get(`${front.httpUrl}/readyz`);
        assert.equal(ready.status, 200);
        assert.deepEqual(JSON.parse(ready.text), { ready: true });
        status.ready = false;
        const notReady = await get(`${front.httpUrl}/readyz`);
        assert.equal(notReady.status, 503);
        assert.deepEqual(JSON.parse(notReady.text), { ready: false });
        assert.equal((await get(`${front.httpUrl}/healthz`)).status, 200, "alive though not ready");
        status.ready = true;
        assert.equal((await get(`${front.httpUrl}/readyz`)).status, 200);
      },
    );
  });

  test("/status is the GatewayStatus plus every refusal reason, access and authentication, in one place", async () => {
    const status = sampleStatus();
    await withFront(
      () => status,
      async (front) => {
        const res = await get(`${front.httpUrl}/status`);
        assert.equal(res.status, 200);
        assert.match(res.type, /^application\/json/);
        const body = JSON.parse(res.text) as GatewayStatusBody;
        const { refused, ...rest } = body;
        assert.deepEqual(rest, status);
        assert.deepEqual(refused, {
          "denied-address": 3,
          "not-allowed-address": 4,
          scanner: 5,
          rate: 6,
          flood: 7,
          "calls-per-user": 8,
          unauthenticated: 11,
          "auth-failed": 13,
          "auth-refused": 15,
        });
      },
    );
  });

  test("/status with authentication off shows the auth reasons at 0 and auth as absent", async () => {
    const status = { ...sampleStatus(), auth: undefined };
    await withFront(
      () => status,
      async (front) => {
        const body = JSON.parse((await get(`${front.httpUrl}/status`)).text) as GatewayStatusBody;
        assert.equal("auth" in body, false, "undefined is left out of the JSON");
        for (const reason of AUTH_REFUSAL_REASONS) assert.equal(body.refused[reason], 0);
        assert.equal(body.refused.flood, 7);
      },
    );
  });

  test("/metrics: refusals by every reason, forwards, upstream, monitors and transport, from one status per scrape", async () => {
    const status = sampleStatus();
    let reads = 0;
    await withFront(
      () => {
        reads++;
        return status;
      },
      async (front) => {
        const res = await get(`${front.httpUrl}/metrics`);
        assert.equal(res.status, 200);
        assert.match(res.type, /^text\/plain; version=0\.0\.4/);
        assert.equal(reads, 1, "one status() per scrape");
        const m = (name: string, labels = "") => sample(res.text, name, labels);

        assert.equal(m("requests_admitted_total"), 120);
        const refused = {
          "denied-address": 3,
          "not-allowed-address": 4,
          scanner: 5,
          rate: 6,
          flood: 7,
          "calls-per-user": 8,
          unauthenticated: 11,
          "auth-failed": 13,
          "auth-refused": 15,
        };
        assert.deepEqual(
          Object.keys(refused).sort(),
          [...REFUSAL_REASONS, ...AUTH_REFUSAL_REASONS].sort(),
        );
        for (const [reason, n] of Object.entries(refused)) {
          assert.equal(m("requests_refused_total", `reason="${reason}"`), n, reason);
        }
        assert.equal(m("registrations"), 26);
        assert.equal(m("dialogs"), 27);
        assert.equal(m("forwarded_total", 'kind="register"'), 21);
        assert.equal(m("forwarded_total", 'kind="dialog"'), 22);
        assert.equal(m("forwarded_total", 'kind="other"'), 23);
        assert.equal(m("retries_total"), 24);
        assert.equal(m("no_proxy_total"), 25);
        assert.equal(m("upstream_pins"), 16);
        assert.equal(m("upstream_held_off"), 1);
        assert.equal(m("upstream_failures_total", 'proxy="p1"'), 17);
        assert.equal(m("upstream_failures_total", 'proxy="p3"'), 18);
        assert.equal(m("monitor_up", 'monitor="http://127.0.0.1:8080"'), 1);
        assert.equal(m("monitor_up", 'monitor="http://127.0.0.2:8080"'), 0);
        assert.equal(m("monitor_queries_total"), 19);
        assert.equal(m("monitor_failures_total"), 20);
        assert.equal(m("tracked_sources"), 9);
        assert.equal(m("sip_received_total"), 28);
        assert.equal(m("sip_sent_total"), 29);
        assert.equal(m("sip_parse_errors_total"), 30);
        assert.equal(m("connections"), 31);
        assert.match(res.text, /# TYPE sipsteer_gateway_requests_refused_total counter/);
        assert.match(res.text, /# TYPE sipsteer_gateway_dialogs gauge/);

        // The next scrape reads the status anew, and labels that went away go with it.
        status.access = { ...status.access, admitted: 121 };
        status.upstream = { ...status.upstream, failuresByProxy: { p1: 17 }, monitors: [] };
        const next = (await get(`${front.httpUrl}/metrics`)).text;
        assert.equal(reads, 2);
        assert.equal(sample(next, "requests_admitted_total"), 121);
        assert.equal(sample(next, "upstream_failures_total", 'proxy="p3"'), undefined);
        assert.doesNotMatch(next, /sipsteer_gateway_monitor_up\{/);
      },
    );
  });

  test("with authentication off, the auth refusal reasons are still present at 0", async () => {
    const status = { ...sampleStatus(), auth: undefined };
    await withFront(
      () => status,
      async (front) => {
        const text = (await get(`${front.httpUrl}/metrics`)).text;
        for (const reason of AUTH_REFUSAL_REASONS) {
          assert.equal(sample(text, "requests_refused_total", `reason="${reason}"`), 0, reason);
        }
      },
    );
  });

  test("httpUrl throws before start and after stop; stop() is idempotent and closes the port", async () => {
    const baseline = await openHandles();
    const front = new GatewayFront({
      id: "gw1",
      listen: { host: "127.0.0.1", port: 0 },
      status: sampleStatus,
      log: silentLogger,
    });
    assert.throws(() => front.httpUrl, /not started/);
    await front.start();
    const url = front.httpUrl;
    await assert.rejects(front.start(), /already started/);
    assert.equal((await get(`${url}/healthz`)).status, 200);
    await front.stop();
    await front.stop();
    assert.throws(() => front.httpUrl, /not started/);
    await assert.rejects(fetch(`${url}/healthz`));
    assert.deepEqual(await openHandles(), baseline);
  });

  test("a port already taken fails start() and leaves nothing open", async () => {
    const baseline = await openHandles();
    const first = new GatewayFront({
      id: "gw1",
      listen: { host: "127.0.0.1", port: 0 },
      status: sampleStatus,
      log: silentLogger,
    });
    await first.start();
    const port = Number(new URL(first.httpUrl).port);
    const second = new GatewayFront({
      id: "gw2",
      listen: { host: "127.0.0.1", port },
      status: sampleStatus,
      log: silentLogger,
    });
    await assert.rejects(second.start(), /EADDRINUSE/);
    assert.throws(() => second.httpUrl, /not started/);
    await second.stop();
    await first.stop();
    assert.deepEqual(await openHandles(), baseline);
  });
});
