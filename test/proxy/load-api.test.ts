// The proxy's load reporting and admin (DESIGN.md "Load report", "Proxy admin and probing"):
// GET /load, the /load/stream Server-Sent Events, /metrics, signed pushes over HTTP and UDP,
// OPTIONS with Sipsteer-Load, draining (503 + Retry-After for new work while dialogs go on),
// drainAndStop, and the `sipsteer proxy` command's SIGTERM and config errors. Real sockets on
// loopback; every proxy is in process except the CLI's.
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, get, type IncomingHttpHeaders, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  loadReportSchema,
  parseSignatureHeader,
  parseSignedDatagram,
  verifySignature,
  type LoadReport,
} from "../../src/contracts/index.js";
import { Proxy, workloadOf } from "../../src/proxy/index.js";
import type { ProxyConfigInput } from "../../src/proxy/proxy-config.js";
import {
  SipRequest,
  TransactionLayer,
  TransportLayer,
  createResponse,
  newBranch,
  type SendTarget,
  type SipResponse,
} from "../../src/sip/index.js";
import { reap, runCli, within } from "../helpers/cli.js";
import { openHandles } from "../helpers/handles.js";
import { Inbox } from "../helpers/sip-caller.js";
import { SmallUas } from "../helpers/small-uas.js";

const DOMAIN = "sipsteer.test";
const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const KEY = { id: "k1", secret: "a-shared-report-secret" };
const TOKEN = "admin-token-0123456789abcdef";

function proxyConfig(over: Partial<ProxyConfigInput> = {}): ProxyConfigInput {
  return {
    id: "p1",
    domains: [DOMAIN],
    listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
    allowedDestinations: LOOPBACK,
    auth: { enabled: false },
    http: { address: "127.0.0.1", port: 0 },
    report: { intervalMs: 1000, push: [], key: KEY },
    adminToken: TOKEN,
    ...over,
  };
}

/** Where SIP peers reach the proxy. */
function sipTarget(proxy: Proxy): SendTarget {
  const l = proxy.listeners.find((x) => x.protocol === "udp")!;
  return { protocol: "udp", address: l.address, port: l.port };
}

// ---- waiting for what arrives -----------------------------------------------------------------

/** Strictly increasing `seq` within one boot. */
function assertSeqIncreasing(reports: readonly LoadReport[]): void {
  for (let i = 1; i < reports.length; i++) {
    assert.equal(reports[i]!.boot, reports[0]!.boot);
    assert.ok(
      reports[i]!.seq > reports[i - 1]!.seq,
      `seq ${reports[i]!.seq} after ${reports[i - 1]!.seq}`,
    );
  }
}

// ---- HTTP -------------------------------------------------------------------------------------

async function http(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** POST /admin/<action> with this Authorization header (null: none). */
function admin(
  proxy: Proxy,
  action: "drain" | "undrain",
  authorization: string | null = `Bearer ${TOKEN}`,
) {
  return http(`${proxy.httpUrl}/admin/${action}`, {
    method: "POST",
    headers: authorization === null ? {} : { authorization },
  });
}

async function getReport(proxy: Proxy): Promise<LoadReport> {
  const res = await http(`${proxy.httpUrl}/load`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  return loadReportSchema.parse(JSON.parse(res.text));
}

/** A Server-Sent Events client of GET /load/stream (plain node:http). */
interface StreamClient {
  readonly reports: Inbox<{ report: LoadReport; receivedAt: number }>;
  /** Settles when the server ends the stream or the client closes it. */
  readonly ended: Promise<void>;
  close(): void;
}

function openStream(url: string): Promise<StreamClient> {
  return new Promise((resolve, reject) => {
    const reports = new Inbox<{ report: LoadReport; receivedAt: number }>();
    const req = get(url, (res) => {
      if (
        res.statusCode !== 200 ||
        !/^text\/event-stream/.test(res.headers["content-type"] ?? "")
      ) {
        req.destroy();
        reject(new Error(`stream answered ${res.statusCode} ${res.headers["content-type"]}`));
        return;
      }
      const ended = new Promise<void>((r) => res.once("close", () => r()));
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = event
            .split("\n")
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).trimStart())
            .join("\n");
          if (data === "") continue;
          reports.push({
            report: loadReportSchema.parse(JSON.parse(data)),
            receivedAt: Date.now(),
          });
        }
      });
      res.on("error", () => undefined);
      resolve({ reports, ended, close: () => req.destroy() });
    });
    req.on("error", reject);
  });
}

/** The monitor side of HTTP pushes: records every request. */
interface PushRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly receivedAt: number;
}

async function startHttpMonitor(): Promise<{
  server: Server;
  url: string;
  requests: Inbox<PushRequest>;
  /** TCP connections accepted so far. */
  connections: () => number;
  stop(): Promise<void>;
}> {
  const requests = new Inbox<PushRequest>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks),
        receivedAt: Date.now(),
      });
      res.writeHead(204).end();
    });
  });
  let connections = 0;
  server.on("connection", () => connections++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    server,
    url: `http://127.0.0.1:${port}/v1/reports`,
    requests,
    connections: () => connections,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The monitor side of UDP pushes. */
async function startUdpMonitor(
  address = "127.0.0.1",
): Promise<{ socket: Socket; url: string; datagrams: Inbox<Buffer>; stop(): Promise<void> }> {
  const datagrams = new Inbox<Buffer>();
  const socket = createSocket("udp4");
  socket.on("message", (m) => datagrams.push(m));
  await new Promise<void>((r) => socket.bind(0, address, r));
  return {
    socket,
    url: `udp://${address}:${socket.address().port}`,
    datagrams,
    stop: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

// ---- SIP peers on our stack -------------------------------------------------------------------

let sipCounter = 0;

function sipRequest(method: string, uri: string, headers: [string, string][]): SipRequest {
  return new SipRequest({
    method,
    uri,
    headers: [["Max-Forwards", "70"], ...headers, ["Content-Length", "0"]],
  });
}

/** A caller: transport and transaction layers on a UDP socket. */
class Caller {
  readonly transport = new TransportLayer({
    listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
    allowedDestinations: LOOPBACK,
  });
  readonly transactions = new TransactionLayer({ transport: this.transport });

  async start(): Promise<this> {
    await this.transport.start();
    this.transactions.start();
    return this;
  }

  async stop(): Promise<void> {
    this.transactions.stop();
    await this.transport.stop();
  }

  get port(): number {
    return this.transport.boundListeners[0]!.port;
  }

  /** A request outside a dialog, to `target`; its final response. */
  async send(method: string, uri: string, target: SendTarget): Promise<SipResponse> {
    const n = ++sipCounter;
    const request = sipRequest(method, uri, [
      ["From", `<sip:alice@${DOMAIN}>;tag=o${n}`],
      ["To", `<sip:bob@${DOMAIN}>`],
      ["Call-ID", `load-api-${n}-${process.pid}`],
      ["CSeq", `1 ${method}`],
      ["Contact", `<sip:alice@127.0.0.1:${this.port}>`],
    ]);
    return this.transactions.sendRequest(request, target).final;
  }

  /**
   * An INVITE to bob through the proxy. On a 2xx, the ACK goes back along the Record-Route
   * set (RFC 3261 §12.1.2, §13.2.2.4) and the dialog is returned for a later BYE.
   */
  async invite(proxy: SendTarget): Promise<{ response: SipResponse; call: Call | undefined }> {
    const n = ++sipCounter;
    const from = `<sip:alice@${DOMAIN}>;tag=c${n}`;
    const callId = `load-api-call-${n}-${process.pid}`;
    const request = sipRequest("INVITE", `sip:bob@${DOMAIN}`, [
      ["From", from],
      ["To", `<sip:bob@${DOMAIN}>`],
      ["Call-ID", callId],
      ["CSeq", "1 INVITE"],
      ["Contact", `<sip:alice@127.0.0.1:${this.port}>`],
    ]);
    const response = await this.transactions.sendRequest(request, proxy).final;
    if (response.status >= 300) return { response, call: undefined };
    const call: Call = {
      callId,
      from,
      to: response.getHeader("to")!,
      remote: response.contacts[0]!.uri.toString(),
      // The UAC's route set is the Record-Route list in reverse.
      routes: response.recordRoutes.map((rr) => `<${rr.uri.toString()}>`).reverse(),
    };
    assert.ok(call.routes.length > 0, "the proxy record-routes the call");
    const ack = new SipRequest({
      method: "ACK",
      uri: call.remote,
      headers: [
        ["Max-Forwards", "70"],
        ...call.routes.map((r): [string, string] => ["Route", r]),
        ["From", from],
        ["To", call.to],
        ["Call-ID", callId],
        ["CSeq", "1 ACK"],
        ["Content-Length", "0"],
      ],
    });
    await this.transport.send(ack, proxy, { viaBranch: newBranch() });
    return { response, call };
  }

  /** An in-dialog BYE along the route set (through the proxy); its final status. */
  async bye(proxy: SendTarget, call: Call): Promise<number> {
    const request = sipRequest("BYE", call.remote, [
      ...call.routes.map((r): [string, string] => ["Route", r]),
      ["From", call.from],
      ["To", call.to],
      ["Call-ID", call.callId],
      ["CSeq", "2 BYE"],
    ]);
    return (await this.transactions.sendRequest(request, proxy).final).status;
  }
}

interface Call {
  readonly callId: string;
  readonly from: string;
  readonly to: string;
  readonly remote: string;
  readonly routes: string[];
}

/**
 * Bob: a SmallUas that answers INVITE 200 with the Record-Route echoed (RFC 3261 §12.1.1) and
 * BYE 200, registered at the proxy from its own socket.
 */
async function startCallee(): Promise<SmallUas> {
  const uas = new SmallUas({
    listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
    inviteStatus: 0,
  });
  uas.transactions.on("request", (tx) => {
    if (tx.method !== "INVITE") return;
    const ok = createResponse(tx.request, 200, { toTag: `b${++sipCounter}` });
    for (const rr of tx.request.getHeaders("record-route")) ok.appendHeader("Record-Route", rr);
    ok.appendHeader("Contact", `<sip:bob@127.0.0.1:${uas.port()}>`);
    tx.respond(ok);
  });
  await uas.start();
  return uas;
}

async function register(uas: SmallUas, proxy: SendTarget): Promise<SipResponse> {
  const n = ++sipCounter;
  const request = sipRequest("REGISTER", `sip:${DOMAIN}`, [
    ["From", `<sip:bob@${DOMAIN}>;tag=r${n}`],
    ["To", `<sip:bob@${DOMAIN}>`],
    ["Call-ID", `load-api-reg-${n}-${process.pid}`],
    ["CSeq", `${n} REGISTER`],
    ["Contact", `<sip:bob@127.0.0.1:${uas.port()}>`],
    ["Expires", "600"],
  ]);
  return uas.transactions.sendRequest(request, proxy).final;
}

/**
 * Runs `body` with a started proxy, a registered callee and a caller; stops them all and checks
 * that nothing is left open.
 */
async function withCallSetup(
  over: Partial<ProxyConfigInput>,
  body: (env: {
    proxy: Proxy;
    target: SendTarget;
    caller: Caller;
    callee: SmallUas;
  }) => Promise<void>,
): Promise<void> {
  const baseline = await openHandles();
  const proxy = new Proxy(proxyConfig(over));
  let callee: SmallUas | undefined;
  let caller: Caller | undefined;
  try {
    await proxy.start();
    const target = sipTarget(proxy);
    callee = await startCallee();
    caller = await new Caller().start();
    assert.equal((await register(callee, target)).status, 200);
    await body({ proxy, target, caller, callee });
  } finally {
    await proxy.stop();
    await caller?.stop();
    await callee?.stop();
  }
  assert.deepEqual(await openHandles(), baseline);
}

async function withProxy(
  over: Partial<ProxyConfigInput>,
  body: (proxy: Proxy) => Promise<void>,
): Promise<void> {
  const baseline = await openHandles();
  const proxy = new Proxy(proxyConfig(over));
  try {
    await proxy.start();
    await body(proxy);
  } finally {
    await proxy.stop();
  }
  assert.deepEqual(await openHandles(), baseline);
}

/** Whether `promise` settles within `ms`: a bounded wait where no event says "it did not". */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const settled = promise.then(() => true);
  return (await within(settled, ms)) === true;
}

// ---- the tests --------------------------------------------------------------------------------

describe("proxy load reports: GET /load, /load/stream, /metrics", () => {
  test("GET /load: a report the contract accepts, naming the proxy and its listeners; seq increases", async () => {
    await withProxy({ id: "p7" }, async (proxy) => {
      const udp = proxy.listeners.find((l) => l.protocol === "udp")!;
      const before = Date.now();
      const reports = [await getReport(proxy), await getReport(proxy), await getReport(proxy)];
      const after = Date.now();
      assertSeqIncreasing(reports);
      for (const r of reports) {
        assert.equal(r.proxy, "p7");
        assert.equal(r.state, "active");
        assert.equal(r.interval, 1000);
        assert.equal(r.calls, 0);
        assert.equal(r.store, "ok");
        assert.deepEqual(r.capacity, { calls: 0, media: 0 });
        assert.deepEqual(r.uris, { udp: `sip:127.0.0.1:${udp.port}` });
        assert.ok(r.at >= before - 5 && r.at <= after + 5, `at ${r.at} in [${before}, ${after}]`);
      }
      assert.deepEqual(proxy.report().boot, reports[0]!.boot);
    });
  });

  test("GET /load: uris name every listener, one per transport", async () => {
    await withProxy(
      {
        listen: [
          { protocol: "udp", address: "127.0.0.1", port: 0 },
          { protocol: "tcp", address: "127.0.0.1", port: 0 },
          { protocol: "ws", address: "127.0.0.1", port: 0 },
        ],
      },
      async (proxy) => {
        const port = (p: string) => proxy.listeners.find((l) => l.protocol === p)!.port;
        const r = await getReport(proxy);
        assert.deepEqual(r.uris, {
          udp: `sip:127.0.0.1:${port("udp")}`,
          tcp: `sip:127.0.0.1:${port("tcp")};transport=tcp`,
          ws: `ws://127.0.0.1:${port("ws")}`,
        });
      },
    );
  });

  test("GET /load/stream: a report each interval, in order; closing the client lets stop() finish clean", async () => {
    await withProxy({ report: { intervalMs: 50, key: KEY } }, async (proxy) => {
      const stream = await openStream(`${proxy.httpUrl}/load/stream`);
      try {
        await stream.reports.until((r) => r.length >= 5, 3000, "5 streamed reports");
        const got = stream.reports.items.map((x) => x.report);
        assertSeqIncreasing(got);
        for (const r of got) {
          assert.equal(r.proxy, "p1");
          assert.equal(r.state, "active");
          assert.equal(r.interval, 50);
        }
        // About one per interval: 4 gaps between the 1st and 5th report made on the timer.
        const span = got[4]!.at - got[0]!.at;
        assert.ok(span >= 4 * 50 - 20 && span < 4 * 50 * 5, `4 intervals took ${span} ms`);
      } finally {
        stream.close();
      }
      await stream.ended;
    });
  });

  test("GET /load/stream: each closed client's listener goes (15 in turn, no MaxListeners warning)", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      await withProxy({ report: { intervalMs: 20, key: KEY } }, async (proxy) => {
        for (let i = 0; i < 15; i++) {
          const stream = await openStream(`${proxy.httpUrl}/load/stream`);
          try {
            await stream.reports.until((r) => r.length >= 2, 2000, `reports on client ${i}`);
          } finally {
            stream.close();
          }
          await stream.ended;
        }
        // A warning is emitted on the next tick: give it one report's time to show.
        await getReport(proxy);
      });
    } finally {
      process.off("warning", onWarning);
    }
    const leaks = warnings.filter((w) => w.name === "MaxListenersExceededWarning");
    assert.deepEqual(leaks, [], "a listener per closed client would pass the limit of 10");
  });

  test("GET /load/stream: a change (drain, undrain) is streamed at once, not at the next interval", async () => {
    await withProxy({ report: { intervalMs: 5000, key: KEY } }, async (proxy) => {
      const stream = await openStream(`${proxy.httpUrl}/load/stream`);
      try {
        // The newest report comes at once on connecting.
        await stream.reports.until((r) => r.length >= 1, 2000, "the first streamed report");
        assert.equal(stream.reports.items[0]!.report.state, "active");
        const drainAt = Date.now();
        assert.equal((await admin(proxy, "drain")).status, 200);
        const draining = await stream.reports.first(
          (x) => x.report.state === "draining",
          2000,
          "a draining report on the stream",
        );
        assert.ok(draining.receivedAt - drainAt < 1000, "well before the 5 s interval");
        const mark = stream.reports.items.length;
        assert.equal((await admin(proxy, "undrain")).status, 200);
        await stream.reports.first(
          (x) => x.report.state === "active",
          2000,
          "an active report after undrain",
          mark,
        );
        assertSeqIncreasing(stream.reports.items.map((x) => x.report));
      } finally {
        stream.close();
      }
      await stream.ended;
    });
  });

  test("stop() with a stream client still connected ends the stream and returns", async () => {
    const baseline = await openHandles();
    const proxy = new Proxy(proxyConfig({ report: { intervalMs: 50, key: KEY } }));
    let stream: StreamClient | undefined;
    let stopping: Promise<void> | undefined;
    try {
      await proxy.start();
      stream = await openStream(`${proxy.httpUrl}/load/stream`);
      await stream.reports.until((r) => r.length >= 1, 2000, "a streamed report");
      // A monitor holding the stream must not keep the proxy from stopping (SIGTERM).
      stopping = proxy.stop();
      assert.ok(await settlesWithin(stopping, 3000), "stop() returned with a held stream");
      assert.ok(await settlesWithin(stream.ended, 1000), "the client saw the stream end");
    } finally {
      stream?.close();
      await (stopping ?? proxy.stop());
    }
    assert.deepEqual(await openHandles(), baseline);
  });

  test("GET /metrics: Prometheus text with calls, registrations, transactions, SIP received", async () => {
    await withProxy({}, async (proxy) => {
      const caller = await new Caller().start();
      try {
        const target = sipTarget(proxy);
        const ok = await caller.send("OPTIONS", `sip:${target.address}:${target.port}`, target);
        assert.equal(ok.status, 200);
      } finally {
        await caller.stop();
      }
      const res = await http(`${proxy.httpUrl}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
      const value = (name: string): number => {
        const m = new RegExp(`^${name}\\{proxy="p1"\\} (\\S+)$`, "m").exec(res.text);
        assert.ok(m !== null, `${name} in\n${res.text}`);
        return Number(m[1]);
      };
      assert.match(res.text, /^# TYPE sipsteer_proxy_calls gauge$/m);
      assert.equal(value("sipsteer_proxy_calls"), 0);
      assert.equal(value("sipsteer_proxy_registrations"), 0);
      assert.ok(value("sipsteer_proxy_transactions") >= 0);
      assert.match(res.text, /^# TYPE sipsteer_proxy_sip_received_total counter$/m);
      assert.ok(value("sipsteer_proxy_sip_received_total") >= 1);
    });
  });
});

describe("proxy load reports: signed pushes", () => {
  test("over HTTP and UDP, HMAC-signed, seq monotonic, at recent; not to a target outside allowedDestinations", async () => {
    const baseline = await openHandles();
    const monitor = await startHttpMonitor();
    const udp = await startUdpMonitor("127.0.0.1");
    // 127.0.0.2 is loopback too, but outside this proxy's allowedDestinations.
    const outside = await startUdpMonitor("127.0.0.2");
    const proxy = new Proxy(
      proxyConfig({
        allowedDestinations: ["127.0.0.1/32", "::1/128"],
        report: { intervalMs: 50, push: [monitor.url, udp.url, outside.url], key: KEY },
      }),
    );
    try {
      await proxy.start();
      await monitor.requests.until((r) => r.length >= 3, 3000, "3 HTTP pushes");
      await udp.datagrams.until((d) => d.length >= 3, 3000, "3 UDP pushes");

      const viaHttp = monitor.requests.items.map((req) => {
        assert.equal(req.method, "POST");
        assert.equal(req.url, "/v1/reports");
        assert.match(req.headers["content-type"] ?? "", /^application\/json/);
        const header = req.headers["sipsteer-signature"];
        assert.equal(typeof header, "string", "Sipsteer-Signature header");
        const sig = parseSignatureHeader(header as string);
        assert.ok(sig !== undefined, `parsable signature header: ${String(header)}`);
        assert.equal(sig.keyId, KEY.id);
        assert.ok(verifySignature(req.body, sig.sig, KEY.secret), "HMAC over the body bytes");
        assert.equal(verifySignature(req.body, sig.sig, "another-secret-entirely"), false);
        const report = loadReportSchema.parse(JSON.parse(req.body.toString("utf8")));
        assert.ok(Math.abs(req.receivedAt - report.at) < 2000, `at ${report.at} is recent`);
        return report;
      });
      assertSeqIncreasing(viaHttp);

      const viaUdp = udp.datagrams.items.map((d) => {
        const signed = parseSignedDatagram(d);
        assert.ok(signed !== undefined, "a signed datagram");
        assert.equal(signed.keyId, KEY.id);
        assert.ok(verifySignature(signed.body, signed.sig, KEY.secret), "HMAC over the body");
        const tampered = Buffer.from(signed.body);
        tampered.writeUInt8(tampered.readUInt8(0) ^ 1, 0);
        assert.equal(verifySignature(tampered, signed.sig, KEY.secret), false);
        const report = loadReportSchema.parse(JSON.parse(signed.body.toString("utf8")));
        assert.ok(Math.abs(Date.now() - report.at) < 5000, `at ${report.at} is recent`);
        return report;
      });
      assertSeqIncreasing(viaUdp);
      assert.ok(viaUdp.every((r) => r.proxy === "p1" && r.state === "active"));
      // The same report goes to every target: the seqs seen on both channels overlap.
      const httpSeqs = new Set(viaHttp.map((r) => r.seq));
      assert.ok(
        viaUdp.some((r) => httpSeqs.has(r.seq)),
        "one report, pushed to each target",
      );

      // Later pushes to the allowed target came and went; the one outside got nothing.
      const seen = udp.datagrams.items.length;
      await udp.datagrams.until((d) => d.length >= seen + 2, 3000, "2 more UDP pushes");
      assert.equal(outside.datagrams.items.length, 0, "nothing sent outside allowedDestinations");
    } finally {
      await proxy.stop();
      await monitor.stop();
      await udp.stop();
      await outside.stop();
    }
    assert.deepEqual(await openHandles(), baseline);
  });

  // A restarted proxy must be choosable at once: the work of starting is not load it carries.
  test("the first report does not count the event loop's work before start() (elu and cpu 0)", async () => {
    const monitor = await startHttpMonitor();
    const proxy = new Proxy(
      proxyConfig({ report: { intervalMs: 60_000, push: [monitor.url], key: KEY } }),
    );
    try {
      const busyUntil = performance.now() + 300;
      while (performance.now() < busyUntil) {
        // What loading a large store or config would cost before serving.
      }
      await proxy.start();
      await monitor.requests.until((r) => r.length >= 1, 3000, "the first push");
      const first = loadReportSchema.parse(
        JSON.parse(monitor.requests.items[0]!.body.toString("utf8")),
      );
      assert.equal(first.seq, 0);
      assert.equal(first.elu, 0, "no event-loop use measured yet");
      assert.equal(first.cpu, 0, "no CPU measured yet");
      assert.equal(workloadOf(first), 0, "an idle proxy at start is idle");
    } finally {
      await proxy.stop();
      await monitor.stop();
    }
  });

  // A push on a kept-alive connection costs the monitor a fraction of one on a new connection
  // (bench/monitor/ingest.ts): the reporter keeps its connection to each target.
  test("HTTP pushes reuse one kept-alive connection to the target", async () => {
    const baseline = await openHandles();
    const monitor = await startHttpMonitor();
    const proxy = new Proxy(
      proxyConfig({ report: { intervalMs: 50, push: [monitor.url], key: KEY } }),
    );
    try {
      await proxy.start();
      await monitor.requests.until((r) => r.length >= 20, 5000, "20 HTTP pushes");
      // A second one may open while the very first push is still connecting.
      assert.ok(
        monitor.connections() <= 2,
        `${monitor.requests.items.length} pushes over ${monitor.connections()} connections`,
      );
    } finally {
      await proxy.stop();
      await monitor.stop();
    }
    assert.deepEqual(await openHandles(), baseline);
  });

  test("a drain and an undrain are pushed at once, even right after a periodic push", async () => {
    const udp = await startUdpMonitor();
    const stateOf = (d: Buffer) =>
      loadReportSchema.parse(JSON.parse(parseSignedDatagram(d)!.body.toString("utf8"))).state;
    try {
      await withProxy(
        { report: { intervalMs: 5000, push: [udp.url], key: KEY } },
        async (proxy) => {
          await udp.datagrams.until((d) => d.length >= 1, 2000, "the push made at start");
          for (const [action, state] of [
            ["drain", "draining"],
            ["undrain", "active"],
          ] as const) {
            const mark = udp.datagrams.items.length;
            const at = Date.now();
            assert.equal((await admin(proxy, action)).status, 200);
            await udp.datagrams.first(
              (d) => stateOf(d) === state,
              2000,
              `a pushed ${state} report`,
              mark,
            );
            assert.ok(Date.now() - at < 1500, `${action} pushed well before the 5 s interval`);
          }
        },
      );
    } finally {
      await udp.stop();
    }
  });

  test("5 calls starting push a report at once, well before the 5 s interval", async () => {
    const udp = await startUdpMonitor();
    try {
      await withCallSetup(
        { report: { intervalMs: 5000, push: [udp.url], key: KEY } },
        async ({ target, caller }) => {
          await udp.datagrams.until((d) => d.length >= 1, 2000, "the push made at start");
          const mark = udp.datagrams.items.length;
          const startedAt = Date.now();
          const calls = await Promise.all([1, 2, 3, 4, 5].map(() => caller.invite(target)));
          for (const c of calls) assert.equal(c.response.status, 200);
          try {
            const pushed = await udp.datagrams.first(
              (d) => JSON.parse(parseSignedDatagram(d)!.body.toString()).calls >= 5,
              2000,
              "a push with the 5 calls",
              mark,
            );
            const report = loadReportSchema.parse(
              JSON.parse(parseSignedDatagram(pushed)!.body.toString()),
            );
            assert.ok(report.at - startedAt < 2000, "pushed on the change, not on the interval");
          } finally {
            for (const c of calls) if (c.call !== undefined) await caller.bye(target, c.call);
          }
        },
      );
    } finally {
      await udp.stop();
    }
  });
});

describe("proxy admin and probing: OPTIONS, drain, undrain, health", () => {
  test("OPTIONS 200 with Sipsteer-Load; drained: 503 + Retry-After for OPTIONS, REGISTER and a new INVITE, while a call set up before goes on to its BYE; undrain restores", async () => {
    await withCallSetup({}, async ({ proxy, target, caller, callee }) => {
      const self = `sip:${target.address}:${target.port}`;
      const options = await caller.send("OPTIONS", self, target);
      assert.equal(options.status, 200);
      const load = options.getHeader("sipsteer-load");
      assert.ok(load !== undefined, "Sipsteer-Load header");
      assert.match(load, /^\d+(\.\d+)?$/);
      assert.ok(Number(load) >= 0 && Number(load) <= 1, `workload ${load} in 0..1`);
      assert.equal((await http(`${proxy.httpUrl}/readyz`)).status, 200);
      assert.equal((await http(`${proxy.httpUrl}/healthz`)).status, 200);

      const { response, call } = await caller.invite(target);
      assert.equal(response.status, 200);
      assert.equal(proxy.calls, 1);

      const drained = await admin(proxy, "drain");
      assert.equal(drained.status, 200);
      assert.deepEqual(JSON.parse(drained.text), { state: "draining" });
      assert.equal(proxy.draining, true);
      assert.equal((await getReport(proxy)).state, "draining");
      assert.equal((await http(`${proxy.httpUrl}/readyz`)).status, 503);
      assert.equal((await http(`${proxy.httpUrl}/healthz`)).status, 200);

      const refused: [string, SipResponse][] = [
        ["OPTIONS", await caller.send("OPTIONS", self, target)],
        ["REGISTER", await register(callee, target)],
        ["INVITE", (await caller.invite(target)).response],
      ];
      for (const [method, r] of refused) {
        assert.equal(r.status, 503, `${method} while draining`);
        const retryAfter = r.getHeader("retry-after");
        assert.ok(retryAfter !== undefined, `${method}: Retry-After`);
        assert.ok(Number(retryAfter) > 0, `${method}: Retry-After ${retryAfter}`);
      }
      assert.equal(proxy.calls, 1, "the refused INVITE made no call");

      // The dialog set up before the drain goes on: its BYE goes through to bob.
      const byesBefore = callee.answered.get("BYE") ?? 0;
      assert.equal(await caller.bye(target, call!), 200);
      assert.equal(callee.answered.get("BYE"), byesBefore + 1);
      assert.equal(proxy.calls, 0);

      const undrained = await admin(proxy, "undrain");
      assert.equal(undrained.status, 200);
      assert.deepEqual(JSON.parse(undrained.text), { state: "active" });
      assert.equal((await caller.send("OPTIONS", self, target)).status, 200);
      assert.equal((await register(callee, target)).status, 200);
      assert.equal((await http(`${proxy.httpUrl}/readyz`)).status, 200);
      assert.equal((await getReport(proxy)).state, "active");
      const again = await caller.invite(target);
      assert.equal(again.response.status, 200);
      assert.equal(await caller.bye(target, again.call!), 200);
    });
  });

  test("admin without the bearer token, or with a wrong one: 401, state unchanged", async () => {
    await withProxy({}, async (proxy) => {
      for (const action of ["drain", "undrain"] as const) {
        const refused = [
          null,
          "",
          "Bearer",
          "Bearer wrong-token-0123456789abc",
          `Bearer ${TOKEN}x`,
          `Bearer ${TOKEN.slice(0, -1)}`,
          `Basic ${Buffer.from(`admin:${TOKEN}`).toString("base64")}`,
        ];
        for (const authorization of refused) {
          const res = await admin(proxy, action, authorization);
          assert.equal(res.status, 401, `${action} with ${String(authorization)}`);
        }
      }
      assert.equal(proxy.draining, false);
      assert.equal((await getReport(proxy)).state, "active");
    });
  });

  test("admin on a proxy without an adminToken: 401 whatever is sent", async () => {
    await withProxy({ adminToken: undefined }, async (proxy) => {
      assert.equal((await admin(proxy, "drain", null)).status, 401);
      assert.equal((await admin(proxy, "drain", "Bearer ")).status, 401);
      assert.equal((await admin(proxy, "drain", `Bearer ${TOKEN}`)).status, 401);
      assert.equal(proxy.draining, false);
    });
  });

  test("calls: up with an answered INVITE, down after its BYE", async () => {
    await withCallSetup({}, async ({ proxy, target, caller }) => {
      assert.equal(proxy.calls, 0);
      assert.equal((await getReport(proxy)).calls, 0);
      const { response, call } = await caller.invite(target);
      assert.equal(response.status, 200);
      assert.equal(proxy.calls, 1);
      assert.equal((await getReport(proxy)).calls, 1);
      assert.equal(await caller.bye(target, call!), 200);
      assert.equal(proxy.calls, 0);
      assert.equal((await getReport(proxy)).calls, 0);
    });
  });
});

describe("proxy drainAndStop", () => {
  test("waits while a call is up; its BYE lets it stop", async () => {
    await withCallSetup({}, async ({ proxy, target, caller }) => {
      const { call } = await caller.invite(target);
      assert.ok(call !== undefined);
      const stopping = proxy.drainAndStop(20_000);
      assert.equal(proxy.draining, true);
      assert.equal(await settlesWithin(stopping, 600), false, "still waiting for the call");
      assert.equal((await http(`${proxy.httpUrl}/healthz`)).status, 200, "still serving");
      assert.equal(await caller.bye(target, call), 200);
      assert.ok(await settlesWithin(stopping, 3000), "stopped once the call was over");
      assert.equal(await stopping, 0);
    });
  });

  test("a short timeout with a call left up stops anyway and says how many were left", async () => {
    await withCallSetup({}, async ({ proxy, target, caller }) => {
      const { call } = await caller.invite(target);
      assert.ok(call !== undefined);
      const started = Date.now();
      const left = await proxy.drainAndStop(300);
      assert.equal(left, 1);
      assert.ok(Date.now() - started < 3000, "gave up at the timeout");
      await assert.rejects(fetch(`${proxy.httpUrl}/healthz`), "the HTTP API is closed");
    });
  });
});

// ---- the sipsteer proxy command ---------------------------------------------------------------

/** A config for `sipsteer proxy`: auth off, every port 0, loopback only. */
function writeCliConfig(dir: string): string {
  const file = join(dir, "proxy.yaml");
  writeFileSync(
    file,
    [
      "id: p9",
      `domains: [${DOMAIN}]`,
      "listen:",
      "  - { protocol: udp, address: 127.0.0.1, port: 0 }",
      `allowedDestinations: ["127.0.0.0/8", "::1/128"]`,
      "auth: { enabled: false }",
      "http: { address: 127.0.0.1, port: 0 }",
      `adminToken: ${TOKEN}`,
      "",
    ].join("\n"),
  );
  return file;
}

describe("sipsteer proxy (CLI)", () => {
  test("SIGTERM with no calls up: drains and exits 0 promptly", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sipsteer-load-api-"));
    const config = writeCliConfig(dir);
    const run = runCli(["proxy", "--config", config, "--json", "--log-level", "warn"]);
    try {
      const line = await within(run.firstLine, 10_000);
      assert.ok(line !== undefined, `a JSON line within 10 s: ${run.stderr}`);
      const info = JSON.parse(line) as {
        proxy: string;
        pid: number;
        sip: { protocol: string; address: string; port: number }[];
        http: string;
      };
      assert.equal(info.proxy, "p9");
      assert.equal(info.pid, run.child.pid);
      assert.equal(info.sip[0]!.protocol, "udp");
      assert.ok(info.sip[0]!.port > 0);
      assert.match(info.http, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(info.http, "http://127.0.0.1:0");
      const report = loadReportSchema.parse(JSON.parse((await http(`${info.http}/load`)).text));
      assert.equal(report.proxy, "p9");
      assert.equal((await http(`${info.http}/readyz`)).status, 200);

      const sentAt = Date.now();
      run.child.kill("SIGTERM");
      const exited = await within(run.exit, 5000);
      assert.ok(exited !== undefined, `exited within 5 s of SIGTERM: ${run.stderr}`);
      assert.deepEqual(exited, { code: 0, signal: null }, run.stderr);
      assert.ok(Date.now() - sentAt < 5000);
    } finally {
      reap(run);
      await run.exit;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("SIGTERM while a monitor holds /load/stream: the stream ends and it exits 0 promptly", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sipsteer-load-api-"));
    const run = runCli(["proxy", "--config", writeCliConfig(dir), "--json", "--log-level", "warn"]);
    let stream: StreamClient | undefined;
    try {
      const line = await within(run.firstLine, 10_000);
      assert.ok(line !== undefined, `a JSON line within 10 s: ${run.stderr}`);
      const info = JSON.parse(line) as { http: string };
      stream = await openStream(`${info.http}/load/stream`);
      await stream.reports.until((r) => r.length >= 1, 2000, "a streamed report");
      run.child.kill("SIGTERM");
      const exited = await within(run.exit, 5000);
      assert.ok(exited !== undefined, `exited within 5 s of SIGTERM: ${run.stderr}`);
      assert.deepEqual(exited, { code: 0, signal: null }, run.stderr);
      assert.ok(await settlesWithin(stream.ended, 1000), "the stream ended");
    } finally {
      stream?.close();
      reap(run);
      await run.exit;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a bad config file: exit code 2, stderr naming the field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sipsteer-load-api-"));
    const base = [
      "id: p1",
      "allowedDestinations: ['127.0.0.0/8']",
      "auth: { enabled: false }",
      "http: { address: 127.0.0.1, port: 0 }",
    ];
    const listen = ["listen:", "  - { protocol: udp, address: 127.0.0.1, port: 0 }"];
    const cases: [string, string[], string][] = [
      [
        "listen port x",
        [
          ...base,
          `domains: [${DOMAIN}]`,
          "listen:",
          "  - { protocol: udp, address: 127.0.0.1, port: x }",
        ],
        "proxy.listen.0.port",
      ],
      ["domains missing", [...base, ...listen], "proxy.domains"],
      [
        "push without a key",
        [
          ...base,
          ...listen,
          `domains: [${DOMAIN}]`,
          "report: { intervalMs: 100, push: ['udp://127.0.0.1:9'] }",
        ],
        "proxy.report.key",
      ],
    ];
    const runs = cases.map(([name, lines, field]) => {
      const file = join(dir, `${name.replace(/\W+/g, "-")}.yaml`);
      writeFileSync(file, `${lines.join("\n")}\n`);
      return { name, field, run: runCli(["proxy", "--config", file, "--json"]) };
    });
    try {
      for (const { name, field, run } of runs) {
        const exited = await within(run.exit, 10_000);
        assert.ok(exited !== undefined, `${name}: exits`);
        assert.equal(exited.code, 2, `${name}: exit code; stderr: ${run.stderr}`);
        assert.ok(run.stderr.includes(field), `${name}: stderr names ${field}: ${run.stderr}`);
        assert.equal(run.stdout, "", `${name}: no JSON line`);
      }
    } finally {
      for (const { run } of runs) reap(run);
      await Promise.all(runs.map(({ run }) => run.exit));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
