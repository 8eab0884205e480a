// POST /v1/reports as the monitor answers it ahead of fastify (src/monitor/http-push.ts), over
// real HTTP on loopback: many pushes on one keep-alive connection, bodies in chunks, a query
// string, a chunked body over the limit, other methods and paths left to fastify, and nothing
// left open after stop().
import assert from "node:assert/strict";
import { Agent, request, type IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import { describe, test } from "node:test";
import { signatureHeader, type LoadReport, type SigningKey } from "../../src/contracts/index.js";
import { Monitor } from "../../src/monitor/index.js";
import { openHandles } from "../helpers/handles.js";

const KEY: SigningKey = { id: "k1", secret: "a-shared-report-secret" };
const BODY_LIMIT = 4096;

function report(proxy: string, seq: number): LoadReport {
  return {
    v: 1,
    proxy,
    boot: "push-test",
    seq,
    at: Date.now(),
    interval: 60_000,
    state: "active",
    calls: seq,
    registrations: 0,
    transactions: 0,
    media: 0,
    cps: 0,
    cpu: 0,
    elu: 0,
    store: "ok",
    capacity: { calls: 100, media: 0 },
    uris: { udp: "sip:127.0.0.99:5060" },
  };
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  readonly socket: Socket;
}

/** One request; `chunks` are written one by one (no content-length: chunked). */
function send(
  url: string,
  options: {
    method?: string;
    chunks: readonly Buffer[];
    signature?: string;
    agent?: Agent;
    contentLength?: boolean;
  },
): Promise<Answer> {
  const total = Buffer.concat(options.chunks);
  const headers: Record<string, string | number> = { "content-type": "application/json" };
  if (options.signature !== undefined) headers["sipsteer-signature"] = options.signature;
  if (options.contentLength !== false) headers["content-length"] = total.length;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? "POST", headers, agent: options.agent });
    req.on("error", reject);
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () =>
        resolve({ status: res.statusCode!, headers: res.headers, text, socket: req.socket! }),
      );
    });
    const write = (i: number): void => {
      if (i === options.chunks.length) {
        req.end();
        return;
      }
      // One write a turn, so the monitor sees the body arrive in pieces.
      req.write(options.chunks[i]!, () => setImmediate(() => write(i + 1)));
    };
    write(0);
  });
}

function signed(proxy: string, seq: number): { body: Buffer; signature: string } {
  const body = Buffer.from(JSON.stringify(report(proxy, seq)));
  return { body, signature: signatureHeader(body, KEY) };
}

describe("monitor - POST /v1/reports", () => {
  test("pushes on one keep-alive connection, in chunks, with a query string; over-limit chunked bodies 413; other routes to fastify; nothing left open", async () => {
    const monitor = new Monitor({
      http: { address: "127.0.0.1", port: 0 },
      keys: [KEY],
      reportBodyLimitBytes: BODY_LIMIT,
    });
    await monitor.start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const url = `${monitor.httpUrl}/v1/reports`;
      const sockets = new Set<Socket>();
      for (let seq = 1; seq <= 20; seq++) {
        const { body, signature } = signed("k-a", seq);
        const answer = await send(url, { chunks: [body], signature, agent });
        assert.equal(answer.status, 204, `push ${seq}`);
        assert.equal(answer.text, "");
        assert.equal(answer.headers["content-type"], undefined);
        sockets.add(answer.socket);
      }
      assert.equal(sockets.size, 1, "every push on the one kept-alive connection");
      assert.equal(monitor.table.view("k-a")?.report?.seq, 20);

      // A body in three pieces, with and without a content-length: the HMAC covers them all.
      for (const [seq, contentLength] of [
        [21, true],
        [22, false],
      ] as const) {
        const { body, signature } = signed("k-a", seq);
        const chunks = [body.subarray(0, 10), body.subarray(10, 100), body.subarray(100)];
        const answer = await send(url, { chunks, signature, agent, contentLength });
        assert.equal(answer.status, 204, `chunks, content-length ${contentLength}`);
      }
      assert.equal(monitor.table.view("k-a")?.report?.seq, 22);

      const withQuery = signed("k-a", 23);
      const queried = await send(`${url}?from=test`, {
        chunks: [withQuery.body],
        signature: withQuery.signature,
        agent,
      });
      assert.equal(queried.status, 204);

      // Refusals answer JSON, as before.
      const unsigned = await send(url, { chunks: [withQuery.body], agent });
      assert.equal(unsigned.status, 401);
      assert.equal(unsigned.headers["content-type"], "application/json; charset=utf-8");
      assert.equal((JSON.parse(unsigned.text) as { reason: string }).reason, "unsigned");

      // Over the limit: declared, or found out while a chunked body comes in.
      const big = Buffer.alloc(BODY_LIMIT + 1, 0x20);
      const declared = await send(url, { chunks: [big], signature: signatureHeader(big, KEY) });
      assert.equal(declared.status, 413);
      const pieces = [big.subarray(0, 2000), big.subarray(2000, 4000), big.subarray(4000)];
      const chunked = await send(url, {
        chunks: pieces,
        signature: signatureHeader(big, KEY),
        contentLength: false,
      });
      assert.equal(chunked.status, 413);
      assert.equal((JSON.parse(chunked.text) as { reason: string }).reason, "too-large");

      // Not a push: fastify answers, as it did.
      const getReports = await send(url, { method: "GET", chunks: [], agent });
      assert.equal(getReports.status, 404);
      const otherPath = await send(`${url}x`, {
        chunks: [withQuery.body],
        signature: withQuery.signature,
        agent,
      });
      assert.equal(otherPath.status, 404);
      assert.equal(monitor.table.view("k-a")?.report?.seq, 23);
    } finally {
      agent.destroy();
      await monitor.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });
});
