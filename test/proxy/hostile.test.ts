// The proxy role against hostile input (DESIGN.md "Bad input": every listener faces the
// internet): garbage datagrams, streams cut at random, half-open connections by the hundred,
// floods of INVITEs to unknown users, password guessing. Through all of it good clients are
// served, and what the proxy holds (connections, transactions, heap) stays within its config.
// The attackers speak from their own loopback addresses (127.0.x.y), as they would from their
// own hosts; the good clients from 127.0.0.5x.
import assert from "node:assert/strict";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { once } from "node:events";
import { connect as netConnect, type Socket as NetSocket } from "node:net";
import { describe, test, type TestContext } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import { Proxy, type ProxyConfigInput } from "../../src/proxy/index.js";
import {
  Credentials,
  SipRequest,
  TransactionLayer,
  TransportLayer,
  answerChallenge,
  createResponse,
  readChallenge,
  type SipResponse,
} from "../../src/sip/index.js";
import { openHandles } from "../helpers/handles.js";
import { freePort, startSipp, type SippRun } from "../helpers/sipp.js";
import { requireTool } from "../helpers/tools.js";
import { mutate, mutation } from "../sip/message/arbitraries.js";

const DOMAIN = "sipsteer.test";
const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const PASSWORDS = { alice: "alice-Pa55-hostile", bob: "bob-Pa55-hostile" } as const;
const CREDENTIALS = Credentials.parse(
  Object.entries(PASSWORDS)
    .map(([user, password]) => Credentials.line(user, DOMAIN, password))
    .join("\n"),
);
/** Short transaction timers: Timers H and J (64·T1) run out 3.2 s after a final response. */
const TIMERS = { t1Ms: 50, t2Ms: 400, t4Ms: 500, tryingDelayMs: 200 };
const TIMER_H_MS = 64 * TIMERS.t1Ms;
/** The good clients' timers: a request times out (408) after 64·T1 = 6.4 s. */
const CLIENT_TIMERS = { t1Ms: 100, t2Ms: 1000, t4Ms: 1000 };
/** fast-check seed: the same garbage on every run. */
const SEED = 0x5157ee7;
const MB = 1024 * 1024;

type Transport = "udp" | "tcp";

// ---- the proxy -------------------------------------------------------------------------------

async function startProxy(over: Partial<ProxyConfigInput> = {}): Promise<Proxy> {
  const proxy = new Proxy(
    {
      id: "p-hostile",
      domains: [DOMAIN],
      listen: [
        { protocol: "udp", address: "127.0.0.1", port: 0 },
        { protocol: "tcp", address: "127.0.0.1", port: 0 },
      ],
      allowedDestinations: LOOPBACK,
      http: { address: "127.0.0.1", port: 0 },
      timers: TIMERS,
      ...over,
    },
    { credentials: CREDENTIALS },
  );
  await proxy.start();
  return proxy;
}

function endpointOf(proxy: Proxy, protocol: Transport): { address: string; port: number } {
  const l = proxy.listeners.find((x) => x.protocol === protocol);
  assert.ok(l !== undefined, `the proxy listens on ${protocol}`);
  return { address: l.address, port: l.port };
}

/** Runs `body` with a started proxy; stops it and proves nothing was left open. */
async function withProxy(
  over: Partial<ProxyConfigInput>,
  body: (proxy: Proxy) => Promise<void>,
): Promise<void> {
  const before = await openHandles();
  const proxy = await startProxy(over);
  try {
    await body(proxy);
  } finally {
    await proxy.stop();
  }
  assert.deepEqual(await openHandles(), before, "stop() left no socket, server or timer");
}

// ---- a good client on our own stack (it retransmits over UDP as RFC 3261 §17.1 says) ----------

let sequence = 0;

class Phone {
  readonly transport: TransportLayer;
  readonly transactions: TransactionLayer;
  /** Calls answered with 200, when answering (see answerCalls). */
  answered = 0;
  /** 2xx retransmissions waiting for their ACK, by Call-ID. */
  readonly #unacked = new Map<string, NodeJS.Timeout>();

  private constructor(readonly address: string) {
    this.transport = new TransportLayer({
      listen: [
        { protocol: "udp", address, port: 0 },
        { protocol: "tcp", address, port: 0 },
      ],
      allowedDestinations: LOOPBACK,
    });
    this.transactions = new TransactionLayer({
      transport: this.transport,
      timers: CLIENT_TIMERS,
    });
  }

  static async start(address: string): Promise<Phone> {
    const phone = new Phone(address);
    await phone.transport.start();
    phone.transactions.start();
    return phone;
  }

  async stop(): Promise<void> {
    for (const timer of this.#unacked.values()) clearTimeout(timer);
    this.#unacked.clear();
    this.transactions.stop();
    await this.transport.stop();
  }

  /**
   * Answers calls like a phone: 180 and 200 to an INVITE, Record-Route echoed (RFC 3261
   * §12.1.1), the 2xx retransmitted until its ACK (§13.3.1.4); 200 to BYE and the rest.
   */
  answerCalls(): void {
    this.transactions.on("request", (tx) => {
      const request = tx.request;
      const toTag = `callee${++sequence}`;
      if (tx.method !== "INVITE") {
        tx.respond(createResponse(request, 200, { toTag }));
        return;
      }
      tx.respond(createResponse(request, 180, { toTag }));
      const ok = createResponse(request, 200, { toTag });
      for (const rr of request.getHeaders("record-route")) ok.appendHeader("Record-Route", rr);
      ok.appendHeader("Contact", `<sip:bob@${this.address}:${this.port("udp")}>`);
      tx.respond(ok);
      this.answered++;
      const callId = request.callId;
      const resend = (interval: number, left: number) => {
        this.#unacked.set(
          callId,
          setTimeout(() => {
            if (left === 0 || tx.state !== "accepted") return void this.#unacked.delete(callId);
            tx.respond(ok);
            resend(Math.min(interval * 2, CLIENT_TIMERS.t2Ms), left - 1);
          }, interval),
        );
      };
      resend(CLIENT_TIMERS.t1Ms, 10);
    });
    this.transactions.on("ack", ({ message }) => {
      clearTimeout(this.#unacked.get(message.callId));
      this.#unacked.delete(message.callId);
    });
  }

  port(protocol: Transport): number {
    return this.transport.boundListeners.find((l) => l.protocol === protocol)!.port;
  }

  request(
    method: string,
    uri: string,
    user: string,
    callId: string,
    cseq: number,
    extra: [string, string][] = [],
  ): SipRequest {
    return new SipRequest({
      method,
      uri,
      headers: [
        ["Max-Forwards", "70"],
        ["From", `<sip:${user}@${DOMAIN}>;tag=t${++sequence}`],
        ["To", method === "REGISTER" ? `<sip:${user}@${DOMAIN}>` : `<${uri}>`],
        ["Call-ID", callId],
        ["CSeq", `${cseq} ${method}`],
        ...extra,
        ["Content-Length", "0"],
      ],
    });
  }

  send(proxy: Proxy, protocol: Transport, request: SipRequest): Promise<SipResponse> {
    return this.transactions.sendRequest(request, { protocol, ...endpointOf(proxy, protocol) })
      .final;
  }

  /** OPTIONS to the proxy itself (its domain, no user): the probe of DESIGN.md. */
  options(proxy: Proxy, protocol: Transport): Promise<SipResponse> {
    const callId = `opt-${++sequence}@${this.address}`;
    return this.send(proxy, protocol, this.request("OPTIONS", `sip:${DOMAIN}`, "alice", callId, 1));
  }

  /** REGISTER of `user` with a Contact here, answering one digest challenge. */
  async register(
    proxy: Proxy,
    protocol: Transport,
    user: string,
    password: string,
  ): Promise<SipResponse> {
    const callId = `reg-${++sequence}@${this.address}`;
    const contact = `<sip:${user}@${this.address}:${this.port(protocol)};transport=${protocol}>`;
    const make = (cseq: number, authorization?: string) =>
      this.request("REGISTER", `sip:${DOMAIN}`, user, callId, cseq, [
        ["Contact", contact],
        ["Expires", "600"],
        ...(authorization === undefined ? [] : ([["Authorization", authorization]] as const)),
      ] as [string, string][]);
    const first = await this.send(proxy, protocol, make(1));
    if (first.status !== 401) return first;
    const challenge = readChallenge(first.wwwAuthenticates[0]!);
    assert.ok(challenge !== undefined, "a digest challenge we can answer");
    const authorization = answerChallenge(
      challenge,
      { method: "REGISTER", uri: `sip:${DOMAIN}` },
      { user, password },
    );
    return this.send(proxy, protocol, make(2, authorization));
  }
}

/** Probes the proxy with OPTIONS over `protocols` in turn until `done` settles. */
async function probeUntil(
  phone: Phone,
  proxy: Proxy,
  protocols: Transport[],
  done: Promise<unknown>,
): Promise<SipResponse[]> {
  let finished = false;
  void done.then(
    () => (finished = true),
    () => (finished = true),
  );
  const answers: SipResponse[] = [];
  for (let i = 0; !finished || answers.length < protocols.length; i++) {
    answers.push(await phone.options(proxy, protocols[i % protocols.length]!));
  }
  return answers;
}

function assertServedOptions(answers: readonly SipResponse[], what: string): void {
  for (const r of answers) {
    assert.equal(r.status, 200, `${what}: OPTIONS answered ${r.status}`);
    assert.match(r.getHeader("sipsteer-load") ?? "", /^\d+\.\d\d$/, `${what}: Sipsteer-Load`);
  }
}

/** After an attack: OPTIONS over UDP and TCP get 200 with the load, and a user registers. */
async function assertServesGoodClients(proxy: Proxy, phone: Phone, what: string): Promise<void> {
  assertServedOptions([await phone.options(proxy, "udp"), await phone.options(proxy, "tcp")], what);
  for (const protocol of ["udp", "tcp"] as const) {
    const r = await phone.register(proxy, protocol, "alice", PASSWORDS.alice);
    assert.equal(r.status, 200, `${what}: REGISTER over ${protocol} answered ${r.status}`);
  }
}

// ---- raw sockets for the attackers --------------------------------------------------------------

async function udpSocket(address: string): Promise<UdpSocket> {
  const socket = createSocket({ type: "udp4", recvBufferSize: 4 * MB });
  socket.on("error", () => undefined);
  await new Promise<void>((resolve) => socket.bind(0, address, () => resolve()));
  return socket;
}

async function closeAll(sockets: readonly UdpSocket[]): Promise<void> {
  await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it holds; fails with `what` after `timeoutMs`. */
async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A TCP connection from `localAddress`, connected, with its life recorded. */
interface Conn {
  readonly socket: NetSocket;
  connectedAt: number;
  closedAt: number | undefined;
  /** True once we ended, destroyed or reset it. */
  leftByUs: boolean;
  /** True when it closed and not because of us: the proxy ended or reset it. */
  closedByPeer: boolean;
  received: string;
}

function hangUp(conn: Conn, how: "end" | "destroy" | "reset"): void {
  conn.leftByUs = true;
  if (how === "end") conn.socket.end();
  else if (how === "destroy") conn.socket.destroy();
  else conn.socket.resetAndDestroy();
}

async function connect(port: number, localAddress: string): Promise<Conn> {
  const socket = netConnect({ host: "127.0.0.1", port, localAddress });
  const conn: Conn = {
    socket,
    connectedAt: 0,
    closedAt: undefined,
    leftByUs: false,
    closedByPeer: false,
    received: "",
  };
  socket.on("error", () => undefined);
  socket.on("data", (d: Buffer) => (conn.received += d.toString("latin1")));
  socket.once("close", () => {
    conn.closedAt = Date.now();
    conn.closedByPeer = !conn.leftByUs;
  });
  await once(socket, "connect");
  conn.connectedAt = Date.now();
  return conn;
}

function closed(conn: Conn): Promise<void> {
  return conn.closedAt !== undefined
    ? Promise.resolve()
    : once(conn.socket, "close").then(() => undefined);
}

// ---- messages the attackers mangle -------------------------------------------------------------

function sipText(method: string, via: string, callId: string, body = ""): string {
  return [
    `${method} sip:bob@${DOMAIN} SIP/2.0`,
    `Via: ${via}`,
    "Max-Forwards: 70",
    `From: <sip:mallory@${DOMAIN}>;tag=m${callId.length}`,
    `To: <sip:bob@${DOMAIN}>`,
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    `Contact: <sip:mallory@127.0.2.1:5060>`,
    ...(body === "" ? [] : ["Content-Type: application/sdp"]),
    `Content-Length: ${Buffer.byteLength(body)}`,
    "",
    body,
  ].join("\r\n");
}

const SDP = [
  "v=0",
  "o=mallory 1 1 IN IP4 127.0.2.1",
  "s=-",
  "c=IN IP4 127.0.2.1",
  "t=0 0",
  "m=audio 40000 RTP/AVP 0 8",
  "a=rtpmap:0 PCMU/8000",
  "",
].join("\r\n");

/** Whole, valid messages of several kinds, for cutting and mutating. */
function templates(transport: "UDP" | "TCP", host: string): Buffer[] {
  const via = (n: number) => `SIP/2.0/${transport} ${host}:5060;branch=z9hG4bK-tpl${n};rport`;
  return [
    sipText("INVITE", via(1), "tpl-invite@mallory", SDP),
    sipText("REGISTER", via(2), "tpl-register@mallory"),
    sipText("OPTIONS", via(3), "tpl-options@mallory"),
    sipText("MESSAGE", via(4), "tpl-message@mallory", "hello bob, this is a text"),
    [
      "SIP/2.0 200 OK",
      `Via: ${via(5)}`,
      `From: <sip:bob@${DOMAIN}>;tag=1`,
      `To: <sip:mallory@${DOMAIN}>;tag=2`,
      "Call-ID: tpl-response@mallory",
      "CSeq: 1 INVITE",
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n"),
  ].map((t) => Buffer.from(t, "latin1"));
}

// ---- the tests ------------------------------------------------------------------------------------

describe("the proxy under hostile input", { concurrency: false, timeout: 90_000 }, () => {
  test("thousands of garbage datagrams: good OPTIONS get 200 with Sipsteer-Load during and after", async (t) => {
    await withProxy({}, async (proxy) => {
      const phone = await Phone.start("127.0.0.50");
      const attackers = await Promise.all([1, 2, 3, 4].map((n) => udpSocket(`127.0.2.${n}`)));
      let badRequests = 0;
      for (const s of attackers) {
        s.on("message", (m: Buffer) => {
          if (m.toString("latin1", 0, 12) === "SIP/2.0 400 ") badRequests++;
        });
      }
      try {
        const whole = templates("UDP", "127.0.2.1");
        const garbage = fc.sample(
          fc.oneof(
            // Random bytes, empty datagrams up to a full Ethernet frame.
            fc.uint8Array({ maxLength: 1400 }).map((b) => Buffer.from(b)),
            // Valid messages truncated at a random byte.
            fc
              .tuple(fc.constantFrom(...whole), fc.nat())
              .map(([m, at]) => m.subarray(0, at % m.length)),
            // Valid messages with bytes flipped, inserted, deleted, repeated.
            fc
              .tuple(fc.constantFrom(...whole), fc.array(mutation, { minLength: 1, maxLength: 6 }))
              .map(([m, ms]) => mutate(m, ms)),
          ),
          { seed: SEED, numRuns: 6000 },
        );
        const { address, port } = endpointOf(proxy, "udp");
        const parseErrorsBefore = proxy.transport.stats.parseErrors;
        const spray = (async () => {
          for (let i = 0; i < garbage.length; i++) {
            attackers[i % attackers.length]!.send(garbage[i]!, port, address);
            if (i % 32 === 31) await turn();
          }
        })();
        const during = await probeUntil(phone, proxy, ["udp", "tcp"], spray);
        await spray;

        assert.ok(during.length >= 2, "probes ran while the garbage came");
        assertServedOptions(during, "during the garbage");
        const parseErrors = proxy.transport.stats.parseErrors - parseErrorsBefore;
        t.diagnostic(
          `${garbage.length} datagrams: ${parseErrors} refused as malformed, ` +
            `${badRequests} answered 400, ${during.length} probes meanwhile`,
        );
        assert.ok(parseErrors >= 3000, `most garbage was refused as such (${parseErrors})`);
        assert.ok(badRequests > 0, "what named its sender got its 400");
        await assertServesGoodClients(proxy, phone, "after the garbage");
      } finally {
        await closeAll(attackers);
        await phone.stop();
      }
    });
  });

  test("TCP streams cut at random, endless bytes, huge heads and short bodies: good clients served after", async (t) => {
    await withProxy({}, async (proxy) => {
      const phone = await Phone.start("127.0.0.50");
      const { port } = endpointOf(proxy, "tcp");
      const source = (i: number) => `127.0.3.${(i % 8) + 1}`;
      try {
        // 1. Valid messages (after one whole OPTIONS, sometimes) cut at a random byte, sent in
        //    random chunks, then closed (FIN), destroyed, or reset (RST).
        const whole = templates("TCP", "127.0.3.1");
        const cuts = fc.sample(
          fc.record({
            message: fc.nat(whole.length - 1),
            at: fc.nat(),
            chunks: fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 6 }),
            preceded: fc.boolean(),
            end: fc.constantFrom("end", "destroy", "reset"),
          }),
          { seed: SEED, numRuns: 240 },
        );
        /** A whole OPTIONS to the proxy itself, which it answers 200. */
        const options = (i: number) =>
          Buffer.from(
            sipText(
              "OPTIONS",
              `SIP/2.0/TCP ${source(i)}:5060;branch=z9hG4bK-whole${i}`,
              `whole-${i}@mallory`,
            ).replace(`sip:bob@${DOMAIN}`, `sip:${DOMAIN}`),
            "latin1",
          );
        const cutOne = async (i: number) => {
          const c = cuts[i]!;
          const message = whole[c.message]!;
          const cut = message.subarray(0, 1 + (c.at % (message.length - 1)));
          const bytes = c.preceded ? Buffer.concat([options(i), cut]) : cut;
          const conn = await connect(port, source(i));
          let offset = 0;
          for (let k = 0; offset < bytes.length; k++) {
            const size = c.chunks[k % c.chunks.length]!;
            conn.socket.write(bytes.subarray(offset, offset + size));
            offset += size;
          }
          hangUp(conn, c.end);
          await closed(conn);
        };
        const attack = (async () => {
          for (let i = 0; i < cuts.length; i += 24) {
            await Promise.all(cuts.slice(i, i + 24).map((_, j) => cutOne(i + j)));
          }
        })();
        const during = await probeUntil(phone, proxy, ["tcp", "udp"], attack);
        await attack;
        t.diagnostic(`${cuts.length} cut streams, ${during.length} probes meanwhile`);
        assertServedOptions(during, "during the cut streams");

        // 1b. A whole request, then a reset before the proxy has taken the connection: its
        //     answer goes nowhere, and nothing else may happen (the peer's address is gone).
        await Promise.all(
          Array.from({ length: 40 }, async (_, i) => {
            const conn = await connect(port, source(i));
            conn.socket.write(options(1000 + i));
            hangUp(conn, "reset");
            await closed(conn);
          }),
        );

        // 2. Bytes that never form a message: the proxy holds at most maxMessageBytes of them,
        //    then gives up on the connection (nothing can be framed, nothing answered).
        const endless = await connect(port, source(100));
        const filler = Buffer.alloc(8192, "A");
        for (let i = 0; i < 32 && endless.closedAt === undefined; i++) {
          if (!endless.socket.write(filler)) {
            await Promise.race([once(endless.socket, "drain"), closed(endless)]);
          }
        }
        await closed(endless);
        assert.ok(endless.closedByPeer, "the proxy closed the endless stream");
        assert.equal(endless.received, "");

        // 3. Heads past the codec's limits: answered when the head names where the answer
        //    goes, and closed (the framing is lost).
        const head = (i: number, extra: string[], contentLength = "0") =>
          sipText(
            "OPTIONS",
            `SIP/2.0/TCP ${source(i)}:5060;branch=z9hG4bK-bad${i}`,
            `bad-${i}@m`,
          ).replace(
            "Content-Length: 0",
            [...extra, `Content-Length: ${contentLength}`].join("\r\n"),
          );
        const refusals: [string, string, RegExp | undefined][] = [
          // A 100 kB header before From: the head outgrows a message and has no From to answer.
          [
            "a 100 kB header",
            head(1, []).replace("Max-Forwards: 70", `X-Huge: ${"h".repeat(100_000)}`),
            undefined,
          ],
          ["a 20 kB header", head(2, [`X-Huge: ${"h".repeat(20_000)}`]), /^SIP\/2\.0 400 /],
          [
            "300 header fields",
            head(
              3,
              Array.from({ length: 300 }, (_, i) => `X-Many-${i}: v`),
            ),
            /^SIP\/2\.0 400 /,
          ],
          // A Content-Length no message can have: refused at once, not waited for.
          ["Content-Length 99999999", head(4, [], "99999999"), /^SIP\/2\.0 513 /],
          ["Content-Length -12", head(5, [], "-12"), /^SIP\/2\.0 400 /],
        ];
        for (const [what, text, answer] of refusals) {
          const conn = await connect(port, source(200));
          conn.socket.write(text);
          await closed(conn);
          assert.ok(conn.closedByPeer, `the proxy closed the stream with ${what}`);
          if (answer === undefined) assert.equal(conn.received, "", `no answer to ${what}`);
          else assert.match(conn.received, answer, `the answer to ${what}`);
        }

        // 4. A Content-Length bigger than the body sent, then the client leaves: nothing is
        //    delivered, nothing is answered, the flow is gone.
        const short = await connect(port, source(103));
        const receivedBefore = proxy.transport.stats.received;
        short.socket.write(head(6, [], "5000") + "x".repeat(100));
        hangUp(short, "end");
        await closed(short);
        assert.equal(short.received, "", "no answer to half a message");
        assert.equal(proxy.transport.stats.received, receivedBefore, "nothing was delivered");

        // Every hostile connection is gone from the proxy's tables; good clients are served.
        await until("the hostile flows to be released", () =>
          proxy.transport.flows.every((f) => !f.remote.address.startsWith("127.0.3.")),
        );
        await assertServesGoodClients(proxy, phone, "after the cut streams");
      } finally {
        await phone.stop();
      }
    });
  });

  test("300 half-open connections from 15 sources: capped per source, closed when idle, good clients served meanwhile", async () => {
    const SOURCES = 15;
    const PER_SOURCE = 20;
    const CAP = 16;
    const IDLE_MS = 2000;
    await withProxy(
      {
        transport: { maxConnections: 1000, maxConnectionsPerSource: CAP, idleTimeoutMs: IDLE_MS },
      },
      async (proxy) => {
        const { port } = endpointOf(proxy, "tcp");
        const conns: Conn[] = [];
        const phone = await Phone.start("127.0.0.51");
        try {
          const opening: Promise<Conn>[] = [];
          for (let s = 1; s <= SOURCES; s++) {
            for (let j = 0; j < PER_SOURCE; j++) opening.push(connect(port, `127.0.6.${s}`));
          }
          conns.push(...(await Promise.all(opening)));
          // Half of them start a request and never finish it.
          conns.forEach((c, i) => {
            if (i % 2 === 1) {
              c.socket.write(
                `REGISTER sip:${DOMAIN} SIP/2.0\r\n` +
                  `Via: SIP/2.0/TCP ${c.socket.localAddress}:5060;branch=z9hG4bK-half${i}\r\n` +
                  `From: <sip:mallory@${DOMAIN}>;tag=h${i}\r\n`,
              );
            }
          });
          const stats = proxy.transport.stats;
          await until(
            "the proxy to take or refuse every connection",
            () => stats.connectionsAccepted + stats.connectionsRefused >= SOURCES * PER_SOURCE,
          );
          assert.equal(stats.connectionsAccepted, SOURCES * CAP, "each source got its cap");
          assert.equal(stats.connectionsRefused, SOURCES * (PER_SOURCE - CAP), "the rest refused");
          await until(
            "the refused connections to close",
            () =>
              conns.filter((c) => c.closedAt !== undefined).length >= SOURCES * (PER_SOURCE - CAP),
          );
          assert.equal(proxy.transport.flows.length, SOURCES * CAP);

          // Meanwhile a good client registers and is probed over both transports.
          await assertServesGoodClients(proxy, phone, "while 240 connections are held");
          assert.ok(
            proxy.transport.flows.length <= SOURCES * CAP + 1,
            `open connections bounded by the caps (${proxy.transport.flows.length})`,
          );

          // The idle sweep closes every held connection: not before idleTimeoutMs.
          const held = conns.filter((c) => c.closedAt === undefined);
          assert.equal(held.length, SOURCES * CAP);
          await until(
            "the idle sweep to close the held connections",
            () => held.every((c) => c.closedAt !== undefined),
            IDLE_MS + 5000,
          );
          for (const c of held) {
            assert.ok(c.closedByPeer, "the proxy closed it");
            assert.ok(
              c.closedAt! - c.connectedAt >= IDLE_MS - 250,
              `closed after ${c.closedAt! - c.connectedAt} ms, not before the idle timeout`,
            );
          }
          await until("the proxy to forget them", () =>
            proxy.transport.flows.every((f) => !f.remote.address.startsWith("127.0.6.")),
          );
          await assertServesGoodClients(proxy, phone, "after the idle sweep");
        } finally {
          for (const c of conns) hangUp(c, "destroy");
          await phone.stop();
        }
      },
    );
  });

  for (const auth of [false, true]) {
    const count = auth ? 10_000 : 20_000;
    const expected = auth ? 407 : 404;
    test(`${count} INVITEs to unknown users, auth ${auth ? "on" : "off"}: each gets ${expected}; good clients served; transactions and heap come back`, async (t: TestContext) => {
      const sipp = !auth;
      if (sipp && !requireTool(t, "sipp", "sip-tester")) return;
      await withProxy({ auth: { enabled: auth } }, async (proxy) => {
        const phone = await Phone.start("127.0.0.52");
        const callee = await Phone.start("127.0.0.53");
        callee.answerCalls();
        const runs: SippRun[] = [];
        const floods = await Promise.all([1, 2, 3, 4].map((n) => udpSocket(`127.0.4.${n}`)));
        try {
          const udp = endpointOf(proxy, "udp");
          let calls: SippRun | undefined;
          const CALLS = 30;
          if (sipp) {
            // bob's phone, registered, takes the calls SIPp places while the flood runs.
            const r = await callee.register(proxy, "udp", "bob", PASSWORDS.bob);
            assert.equal(r.status, 200, "bob registered");
          }

          gc();
          const heapBefore = process.memoryUsage().heapUsed;
          const txBefore = proxy.report().transactions;
          let txPeak = 0;
          let heapPeak = heapBefore;

          if (sipp) {
            calls = startSipp({
              scenario: "call-uac.xml",
              transport: "u1",
              remote: `${udp.address}:${udp.port}`,
              localPort: await freePort(),
              calls: CALLS,
              rate: 10,
              extraArgs: [
                "-s",
                "bob",
                "-key",
                "domain",
                DOMAIN,
                "-key",
                "caller",
                "alice",
                "-d",
                "0",
              ],
              timeoutMs: 60_000,
            });
            runs.push(calls);
          }
          const started = Date.now();
          const flood = inviteFlood(floods, udp, count, () => {
            txPeak = Math.max(txPeak, proxy.report().transactions);
            heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
          });
          const during = await probeUntil(phone, proxy, ["udp", "tcp"], flood);
          const result = await flood;
          const floodMs = Date.now() - started;
          t.diagnostic(
            `${count} INVITEs in ${floodMs} ms (${result.rounds} rounds, ${result.resent} resent), ` +
              `${result.answers} answers with retransmissions, ${during.length} probes, ` +
              `peak ${txPeak} transactions and ${((heapPeak - heapBefore) / MB).toFixed(1)} MB`,
          );

          assert.deepEqual(
            result.statuses,
            new Map([[expected, count]]),
            `every INVITE answered ${expected}`,
          );
          assertServedOptions(during, "during the flood");
          if (calls !== undefined) {
            const r = await calls.result;
            assert.equal(r.failed, 0, r.output);
            assert.equal(r.successful, CALLS, r.output);
            assert.equal(callee.answered, CALLS, "every call reached bob");
          }

          // Once Timers H and J have run out, the transactions are gone and the heap is back.
          await closeAll(floods.splice(0));
          await until(
            "the flood's transactions to end",
            () => proxy.report().transactions <= txBefore,
            TIMER_H_MS + 10_000,
          );
          assert.equal(proxy.calls, 0, "no dialog left behind");
          gc();
          const grown = process.memoryUsage().heapUsed - heapBefore;
          t.diagnostic(`heap after the flood: ${(grown / MB).toFixed(1)} MB above the start`);
          assert.ok(grown < 64 * MB, `heap grew by ${(grown / MB).toFixed(1)} MB`);
          await assertServesGoodClients(proxy, phone, "after the flood");
        } finally {
          for (const r of runs) r.kill();
          await Promise.all(runs.map((r) => r.result));
          await closeAll(floods);
          await phone.stop();
          await callee.stop();
        }
      });
    });
  }

  test("password guessing from one source is slowed, then refused with 403; another source still registers", async (t) => {
    const slowAfter = 2;
    const banAfter = 4;
    await withProxy(
      { auth: { enabled: true, slowAfter, banAfter, windowMs: 60_000, banMs: 60_000 } },
      async (proxy) => {
        const mallory = await Phone.start("127.0.5.1");
        const bob = await Phone.start("127.0.5.2");
        try {
          const uri = `sip:${DOMAIN}`;
          const callId = "guess@127.0.5.1";
          const attempt = (cseq: number, authorization?: string) =>
            mallory.send(
              proxy,
              "udp",
              mallory.request("REGISTER", uri, "alice", callId, cseq, [
                ["Contact", `<sip:alice@127.0.5.1:${mallory.port("udp")}>`],
                ...(authorization === undefined
                  ? []
                  : ([["Authorization", authorization]] as [string, string][])),
              ]),
            );
          let last = await attempt(1);
          assert.equal(last.status, 401, "a challenge first");
          const delays: number[] = [];
          const statuses: number[] = [];
          for (let n = 1; n <= banAfter + 1; n++) {
            const challenge = readChallenge(last.wwwAuthenticates[0]!)!;
            const guess = answerChallenge(
              challenge,
              { method: "REGISTER", uri },
              {
                user: "alice",
                password: `guess-${n}`,
              },
            );
            const t0 = Date.now();
            const response = await attempt(n + 1, guess);
            delays.push(Date.now() - t0);
            statuses.push(response.status);
            if (response.status === 401) last = response;
          }
          // Wrong guesses 1 … slowAfter-1 are answered at once, the next ones after a delay
          // that doubles from 0.5 s, and from the banAfter-th on the source is refused.
          t.diagnostic(`answers to the guesses after ${delays.join(", ")} ms`);
          assert.deepEqual(statuses, [...Array<number>(banAfter - 1).fill(401), 403, 403]);
          for (let n = 1; n <= banAfter + 1; n++) {
            const delay = delays[n - 1]!;
            if (n < slowAfter || n >= banAfter) {
              assert.ok(delay < 450, `guess ${n} answered at once (${delay} ms)`);
            } else {
              const slowed = 500 * 2 ** (n - slowAfter);
              assert.ok(delay >= slowed - 20, `guess ${n} slowed by ${slowed} ms (${delay} ms)`);
            }
          }

          // The right password from the banned source is refused too …
          const banned = await mallory.register(proxy, "udp", "bob", PASSWORDS.bob);
          assert.equal(banned.status, 403, "the banned source gets 403 whatever it sends");
          // … while a good client elsewhere registers.
          for (const protocol of ["udp", "tcp"] as const) {
            const r = await bob.register(proxy, protocol, "bob", PASSWORDS.bob);
            assert.equal(r.status, 200, `bob over ${protocol} from another source`);
          }
          assertServedOptions([await bob.options(proxy, "udp")], "next to the ban");
        } finally {
          await mallory.stop();
          await bob.stop();
        }
      },
    );
  });
});

// ---- the INVITE flood ---------------------------------------------------------------------------

interface FloodResult {
  /** Final statuses, and how many INVITEs got each. */
  readonly statuses: Map<number, number>;
  /** Responses received, retransmissions included. */
  readonly answers: number;
  readonly rounds: number;
  /** INVITEs sent again because no answer came (dropped on a full socket buffer). */
  readonly resent: number;
}

/**
 * `count` INVITEs to users that do not exist, spread over `sockets`, sent as fast as the
 * event loop they share with the proxy lets them go (32 datagrams a turn, what libuv reads in
 * one). Like a scanner, it never ACKs; unlike one, it resends what went unanswered (a socket
 * buffer overflowed) until every INVITE has its final response, so that each can be checked.
 */
async function inviteFlood(
  sockets: readonly UdpSocket[],
  target: { address: string; port: number },
  count: number,
  sample: () => void,
): Promise<FloodResult> {
  const status = new Uint16Array(count);
  let answered = 0;
  let answers = 0;
  const messages = Array.from({ length: count }, (_, i) => {
    const s = sockets[i % sockets.length]!;
    const { address, port } = s.address();
    return Buffer.from(
      [
        `INVITE sip:nobody${i}@${DOMAIN} SIP/2.0`,
        `Via: SIP/2.0/UDP ${address}:${port};branch=z9hG4bK-flood-${i};rport`,
        "Max-Forwards: 70",
        `From: <sip:scanner@${DOMAIN}>;tag=fl${i}`,
        `To: <sip:nobody${i}@${DOMAIN}>`,
        `Call-ID: flood-${i}@${address}`,
        "CSeq: 1 INVITE",
        `Contact: <sip:scanner@${address}:${port}>`,
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
      "latin1",
    );
  });
  const onMessage = (bytes: Buffer) => {
    answers++;
    const head = bytes.toString("latin1", 0, Math.min(bytes.length, 1024));
    const code = Number(head.slice(8, 11));
    const id = /\r\nCall-ID: flood-(\d+)@/i.exec(head);
    if (code < 200 || id === null) return;
    const i = Number(id[1]);
    if (status[i] === 0) {
      status[i] = code;
      answered++;
    }
  };
  for (const s of sockets) s.on("message", onMessage);
  let rounds = 0;
  let resent = 0;
  try {
    while (answered < count && rounds < 10) {
      rounds++;
      let sent = 0;
      for (let i = 0; i < count; i++) {
        if (status[i] !== 0) continue;
        if (rounds > 1) resent++;
        sockets[i % sockets.length]!.send(messages[i]!, target.port, target.address);
        if (++sent % 32 === 0) {
          await turn();
          if (sent % 1024 === 0) sample();
        }
      }
      // Wait for the answers to settle before resending what is missing.
      let seen = -1;
      while (answered < count && answered !== seen) {
        seen = answered;
        await sleep(250);
      }
    }
  } finally {
    for (const s of sockets) s.off("message", onMessage);
  }
  const statuses = new Map<number, number>();
  for (const code of status) statuses.set(code, (statuses.get(code) ?? 0) + 1);
  return { statuses, answers, rounds, resent };
}

/** A full garbage collection (the runner's flags cannot be changed; V8's can). */
function gc(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}
