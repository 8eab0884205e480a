// RFC 4475 §3.2-§3.4 (transaction-layer, application-layer and backward-compatibility torture
// messages) sent to a running Proxy, one test per message: each gets what the RFC says a proxy
// (and, for REGISTER, the registrar it is) answers. The messages are the raw files of the RFC's
// Appendix A with their hosts rewritten to loopback (see loopback() for the rules), and both
// proxies may send to loopback only, so nothing can leave the machine whatever they decide.
import assert from "node:assert/strict";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { connect, type Socket as TcpSocket } from "node:net";
import { after, before, describe, test, type TestContext } from "node:test";
import { Proxy, type ProxyConfigInput } from "../../src/proxy/index.js";
import {
  Credentials,
  SipRequest,
  SipResponse,
  SipUri,
  StreamFramer,
  ackForNon2xx,
  createResponse,
  parseDatagram,
  type NameAddr,
  type SipMessage,
} from "../../src/sip/index.js";
import { openHandles } from "../helpers/handles.js";
import { fixturePath } from "../helpers/paths.js";

/** The domains the messages' Request-URIs and AORs name: the proxies serve them. */
const DOMAINS = ["example.com", "example.net", "example.org"];
const LOOPBACK = ["127.0.0.0/8", "::1/128"];
/** How long a response may take on loopback before the test fails. */
const WAIT_MS = 3000;

// ---- the messages, on loopback --------------------------------------------------------------

/** Host names of the messages and their loopback address: one name, one address, in every message. */
const hostAddresses = new Map<string, string>();

function addressOf(host: string): string {
  const key = host.toLowerCase();
  let address = hostAddresses.get(key);
  if (address === undefined) {
    address = `127.0.1.${hostAddresses.size + 1}`;
    hostAddresses.set(key, address);
  }
  return address;
}

/**
 * Every host in `text` on loopback: 192.0.2.N (TEST-NET-1) becomes 127.0.0.N, which is as long,
 * so a body keeps its length; a host name under example.com/.net/.org/.edu becomes an address
 * of 127.0.1.0/24.
 */
function rewriteHosts(text: string): string {
  return text
    .replace(/\b192\.0\.2\.(\d{1,3})\b/g, "127.0.0.$1")
    .replace(/\b(?:[a-z0-9-]+\.)+example\.(?:com|net|org|edu)\b/gi, addressOf);
}

const TOP_VIA = /^((?:via|v)\s*:\s*SIP\s*\/\s*2\.0\s*\/\s*[a-z]+\s+)([^\s;,]+)/i;

/**
 * An RFC 4475 message made loopback-only, its malformation intact:
 * - the top Via's sent-by becomes `sentBy` (the test's socket, where responses go back, or
 *   for a response the proxy's own listener);
 * - every other host per rewriteHosts(); the broadcast 255.255.255.255 of bcast stays, being
 *   what that message is about;
 * - the domains the proxies serve (example.com …) stay where they stand alone, as the domain
 *   of an AOR or a Request-URI: they name the proxy itself, and it takes only IP literals as
 *   next hops, never resolving a name;
 * - Call-IDs stay as written: opaque identifiers, though they look like hosts.
 * Only lengths-preserving rewrites touch a body, so every Content-Length stays as it was, right
 * or (where that is the test) wrong.
 */
function loopback(name: string, sentBy: string): Buffer {
  const text = readFileSync(fixturePath("rfc4475", `${name}.dat`)).toString("latin1");
  const end = text.indexOf("\r\n\r\n");
  const head = end < 0 ? text : text.slice(0, end);
  const body = end < 0 ? undefined : text.slice(end + 4);
  let topVia = false;
  const lines = head.split("\r\n").map((line) => {
    if (/^(?:call-id|i)\s*:/i.test(line)) return line;
    if (!topVia && TOP_VIA.test(line)) {
      topVia = true;
      return rewriteHosts(line.replace(TOP_VIA, (_all, lead: string) => `${lead}${sentBy}`));
    }
    return rewriteHosts(line);
  });
  assert.ok(topVia, `${name} has a Via`);
  if (body === undefined) return Buffer.from(lines.join("\r\n"), "latin1");
  const newBody = rewriteHosts(body);
  assert.equal(newBody.length, body.length, `${name}: the body keeps its length`);
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n${newBody}`, "latin1");
}

// ---- test peers -----------------------------------------------------------------------------

/** A message a peer received: its text, its status when a response, parsed when it parses. */
interface Received {
  readonly text: string;
  readonly status: number | undefined;
  readonly message: SipMessage | undefined;
}

function receivedOf(bytes: Buffer): Received {
  const text = bytes.toString("latin1");
  const status = /^SIP\/2\.0 (\d{3}) /.exec(text)?.[1];
  let message: SipMessage | undefined;
  try {
    message = parseDatagram(bytes) ?? undefined;
  } catch {
    // A response may be refused by our own parser (one to a request without From, say): the
    // status line is what the test reads then.
    message = undefined;
  }
  return { text, status: status === undefined ? undefined : Number(status), message };
}

type Match = (r: Received) => boolean;

/** What a peer received and no test took yet, and the tests waiting for something. */
class Inbox {
  readonly #items: Received[] = [];
  readonly #waiters = new Set<{ match: Match; resolve: (r: Received) => void }>();

  push(r: Received): void {
    for (const w of this.#waiters) {
      if (w.match(r)) {
        this.#waiters.delete(w);
        w.resolve(r);
        return;
      }
    }
    this.#items.push(r);
  }

  has(match: Match): boolean {
    return this.#items.some(match);
  }

  /** The first message, received or to come within `timeoutMs`, that `match` takes. */
  next(match: Match, what: string, timeoutMs = WAIT_MS): Promise<Received> {
    const i = this.#items.findIndex(match);
    if (i >= 0) return Promise.resolve(this.#items.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (r: Received) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }
}

/** A UDP socket on 127.0.0.1 that plays UAC (or, answering by hand, the callee). */
class UdpPeer {
  readonly inbox = new Inbox();

  private constructor(private readonly socket: UdpSocket) {
    socket.on("message", (bytes) => this.inbox.push(receivedOf(bytes)));
  }

  static async open(): Promise<UdpPeer> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    return new UdpPeer(socket);
  }

  get sentBy(): string {
    return `127.0.0.1:${this.socket.address().port}`;
  }

  send(bytes: Buffer | string, port: number): void {
    this.socket.send(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes, port);
  }

  #closed: Promise<void> | undefined;

  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => this.socket.close(() => resolve()));
    return this.#closed;
  }
}

/** A TCP connection to a proxy, its bytes framed by Content-Length as a stream must be. */
class TcpPeer {
  readonly inbox = new Inbox();
  readonly closed: Promise<void>;

  private constructor(private readonly socket: TcpSocket) {
    const framer = new StreamFramer({ role: "client" });
    socket.on("data", (chunk: Buffer) => {
      for (const item of framer.push(chunk)) {
        if (item.kind === "message") this.inbox.push(receivedOf(item.message.toBuffer()));
        else if (item.kind === "error") this.inbox.push(receivedOf(item.bytes));
      }
    });
    socket.on("error", () => undefined);
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
  }

  static async connect(port: number): Promise<TcpPeer> {
    const socket = connect({ host: "127.0.0.1", port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new TcpPeer(socket);
  }

  get sentBy(): string {
    return `${this.socket.localAddress!}:${this.socket.localPort!}`;
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Every response and Call-ID of a message holds its file name (insuf's, in the Via branch). */
function finalTo(name: string): Match {
  return (r) => r.status !== undefined && r.status >= 200 && r.text.includes(name);
}

function requestOf(name: string, method: string): Match {
  return (r) =>
    r.message instanceof SipRequest && r.message.method === method && r.text.includes(name);
}

function mentions(name: string): Match {
  return (r) => r.text.includes(name);
}

function responseOf(r: Received): SipResponse {
  assert.ok(r.message instanceof SipResponse, `a response that parses: ${r.text}`);
  return r.message;
}

function asRequest(bytes: Buffer): SipRequest {
  const m = parseDatagram(bytes);
  assert.ok(m instanceof SipRequest);
  return m;
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- the proxies ----------------------------------------------------------------------------

function proxyConfig(id: string, auth: boolean): ProxyConfigInput {
  return {
    id,
    domains: DOMAINS,
    listen: [
      { protocol: "udp", address: "127.0.0.1", port: 0 },
      { protocol: "tcp", address: "127.0.0.1", port: 0 },
    ],
    allowedDestinations: LOOPBACK,
    auth: { enabled: auth },
    http: { address: "127.0.0.1", port: 0 },
  };
}

function portOf(proxy: Proxy, protocol: "udp" | "tcp"): number {
  return proxy.listeners.find((l) => l.protocol === protocol)!.port;
}

function contactsOf(response: SipResponse, user: string): NameAddr[] {
  return response.contacts.filter((c) => c.uri instanceof SipUri && c.uri.user === user);
}

describe("RFC 4475 §3.2-§3.4 torture messages at the proxy", { concurrency: false }, () => {
  /** Auth disabled: the messages meet the proxy core and registrar as they are. */
  let open: Proxy;
  /** Digest authentication on (regaut01 is about it). */
  let guarded: Proxy;
  /** Our own REGISTERs and OPTIONS go from here (the RFC's messages, from fromUac()). */
  let client: UdpPeer;
  /** user@ and UserB@example.com are registered here: what the proxy forwards arrives here. */
  let callee: UdpPeer;
  /** One UDP socket per message sent (see fromUac). */
  const uacs: UdpPeer[] = [];
  let baseline: Record<string, number>;
  let seq = 0;

  async function stopAll(): Promise<void> {
    await Promise.all([open?.stop(), guarded?.stop()]);
    await Promise.all([client?.close(), callee?.close(), ...uacs.map((u) => u.close())]);
  }

  /** A REGISTER from the client for `user`@example.com; no Contact: a fetch of the bindings. */
  async function register(
    user: string,
    contact?: string,
    ids: { callId: string; cseq: number } = { callId: `reg-${++seq}-${process.pid}`, cseq: 1 },
  ): Promise<SipResponse> {
    client.send(
      [
        "REGISTER sip:example.com SIP/2.0",
        `Via: SIP/2.0/UDP ${client.sentBy};branch=z9hG4bK-reg-${++seq}`,
        "Max-Forwards: 70",
        `From: <sip:${user}@example.com>;tag=r${seq}`,
        `To: <sip:${user}@example.com>`,
        `Call-ID: ${ids.callId}`,
        `CSeq: ${ids.cseq} REGISTER`,
        ...(contact === undefined ? [] : [`Contact: ${contact}`]),
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
      portOf(open, "udp"),
    );
    const r = responseOf(await client.inbox.next(finalTo(ids.callId), "a REGISTER response"));
    assert.equal(r.status, 200, `REGISTER ${user} ${contact ?? "(fetch)"}`);
    return r;
  }

  /** OPTIONS to the proxy itself (its domain, no user): 200 from a proxy that is alive. */
  async function ping(proxy: Proxy): Promise<number | undefined> {
    const callId = `ping-${++seq}-${process.pid}`;
    client.send(
      [
        "OPTIONS sip:example.com SIP/2.0",
        `Via: SIP/2.0/UDP ${client.sentBy};branch=z9hG4bK-ping-${seq}`,
        "Max-Forwards: 70",
        `From: <sip:probe@example.com>;tag=p${seq}`,
        "To: <sip:example.com>",
        `Call-ID: ${callId}`,
        `CSeq: ${seq} OPTIONS`,
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
      portOf(proxy, "udp"),
    );
    return (await client.inbox.next(finalTo(callId), "an OPTIONS response")).status;
  }

  /**
   * Sends message `name` from a UAC socket of its own: the RFC's messages come from as many
   * hosts, and several share a branch (z9hG4bKkdjuw), so from one sent-by they would be one
   * transaction and the later ones taken for retransmissions.
   */
  async function fromUac(name: string): Promise<{ uac: UdpPeer; sent: Buffer }> {
    const uac = await UdpPeer.open();
    uacs.push(uac);
    const sent = loopback(name, uac.sentBy);
    uac.send(sent, portOf(open, "udp"));
    return { uac, sent };
  }

  /** The callee answers a request the proxy forwarded to it. */
  function answer(request: SipRequest, status: number, headers: [string, string][] = []): void {
    const response = createResponse(request, status, { toTag: "callee" });
    for (const [name, value] of headers) response.appendHeader(name, value);
    callee.send(response.toBuffer(), portOf(open, "udp"));
  }

  /** The UAC's ACK for a non-2xx final response (RFC 3261 §17.1.1.3), so that it stops. */
  function ack(uac: UdpPeer, invite: Buffer, final: Received): void {
    uac.send(ackForNon2xx(asRequest(invite), responseOf(final)).toBuffer(), portOf(open, "udp"));
  }

  /** Sends a message over a new TCP connection; the test runs with the connection open. */
  async function overTcp<T>(proxy: Proxy, body: (tcp: TcpPeer) => Promise<T>): Promise<T> {
    const tcp = await TcpPeer.connect(portOf(proxy, "tcp"));
    try {
      return await body(tcp);
    } finally {
      tcp.close();
      await tcp.closed;
    }
  }

  before(async () => {
    baseline = await openHandles();
    open = new Proxy(proxyConfig("open", false));
    guarded = new Proxy(proxyConfig("guarded", true), {
      credentials: Credentials.parse(`${Credentials.line("j.user", "example.com", "secret")}\n`),
    });
    try {
      await open.start();
      await guarded.start();
      client = await UdpPeer.open();
      callee = await UdpPeer.open();
      // The AORs the INVITEs and OPTIONS of the RFC are for, so that the proxy has somewhere to
      // forward them and we see what it forwards.
      for (const user of ["user", "UserB"]) await register(user, `<sip:${user}@${callee.sentBy}>`);
    } catch (e) {
      await stopAll();
      throw e;
    }
  });

  after(stopAll);

  // ---- §3.2 transaction layer semantics ------------------------------------------------------

  test("badbranch (§3.2.1 Missing Transaction Identifier): taken and forwarded like any OPTIONS", async () => {
    // "An element receiving this request could reject the request with a 400 Response …, or it
    // could fall back to the RFC 2543-style transaction identifier." This proxy takes it, and,
    // as a proxy, forwards it to the registered user under a branch of its own.
    const { uac } = await fromUac("badbranch");
    const forwarded = await callee.inbox.next(
      requestOf("badbranch", "OPTIONS"),
      "the forwarded OPTIONS",
    );
    const request = forwarded.message as SipRequest;
    const [ours, theirs] = request.vias;
    assert.match(ours!.branch ?? "", /^z9hG4bK.+/, "the proxy's own branch is a full one");
    assert.equal(theirs!.branch, "z9hG4bK", "the UAC's bare magic cookie is passed on as is");
    assert.equal(request.maxForwards, 2);
    answer(request, 200);
    assert.equal((await uac.inbox.next(finalTo("badbranch"), "the relayed 200")).status, 200);
  });

  // ---- §3.3 application layer semantics ------------------------------------------------------

  test("insuf (§3.3.1 Missing Required Header Fields): 400", async () => {
    // No Call-ID, From or To: "An element receiving this message must not break because of the
    // missing information. Ideally, it will respond with a 400 Bad Request error."
    const { uac } = await fromUac("insuf");
    const r = await uac.inbox.next(finalTo("insuf"), "a response to insuf");
    assert.equal(r.status, 400);
    assert.ok(!callee.inbox.has(mentions("insuf")), "nothing forwarded");
  });

  test("unkscm (§3.3.2 Request-URI with Unknown Scheme): 416, not routed by its To", async () => {
    // "An element receiving this request will reject it with a 416 Unsupported URI Scheme
    // response." Its To is the callee's AOR: routing by the To "is an error". Over TCP, as its
    // Via says.
    await overTcp(open, async (tcp) => {
      tcp.send(loopback("unkscm", tcp.sentBy));
      const r = await tcp.inbox.next(finalTo("unkscm"), "a response to unkscm");
      assert.equal(r.status, 416);
    });
    assert.ok(!callee.inbox.has(mentions("unkscm")), "nothing reached the To's user");
  });

  test("novelsc (§3.3.3 Request-URI with Known but Atypical Scheme): 416", async () => {
    // soap.beep: "If an element will never accept this scheme as meaningful in a Request-URI, it
    // is appropriate to treat it as unknown and return a 416". A proxy of SIP and tel URIs never
    // does. Over TCP, as its Via says.
    await overTcp(open, async (tcp) => {
      tcp.send(loopback("novelsc", tcp.sentBy));
      const r = await tcp.inbox.next(finalTo("novelsc"), "a response to novelsc");
      assert.equal(r.status, 416);
    });
  });

  test("unksm2 (§3.3.4 Unknown URI Schemes in Header Fields): the registrar answers 400", async () => {
    // A REGISTER for our domain, so the proxy is the registrar here: "A registrar would reject
    // this request with a 400 Bad Request response, since the To: header field is required to
    // contain a SIP or SIPS URI as an AOR."
    const { uac } = await fromUac("unksm2");
    const r = await uac.inbox.next(finalTo("unksm2"), "a response to unksm2");
    assert.equal(r.status, 400);
  });

  test("bext01 (§3.3.5 Proxy-Require and Require): 420 listing the Proxy-Require tokens", async () => {
    // "Any element receiving this request will respond with a 420 Bad Extension response,
    // containing an Unsupported header field listing these features from either the Require or
    // Proxy-Require header field, depending on the role in which the element is responding." A
    // proxy checks Proxy-Require and leaves Require to the UAS (RFC 3261 §16.3 step 5). Its Via
    // says TLS; a stream as well, and the response goes back on the connection (§18.2.2).
    await overTcp(open, async (tcp) => {
      tcp.send(loopback("bext01", tcp.sentBy));
      const r = responseOf(await tcp.inbox.next(finalTo("bext01"), "a response to bext01"));
      assert.equal(r.status, 420);
      const unsupported = r
        .getHeaders("unsupported")
        .flatMap((v) => v.split(","))
        .map((t) => t.trim());
      assert.deepEqual(unsupported.sort(), ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]);
    });
    assert.ok(!callee.inbox.has(mentions("bext01")), "not forwarded");
  });

  test("invut (§3.3.6 Unknown Content-Type): forwarded untouched; the UAS's 415 relayed", async () => {
    // "A proxy receiving this request would process it just like any other INVITE. An endpoint
    // receiving this request would reject it with a 415 Unsupported Media Type error."
    const { uac, sent } = await fromUac("invut");
    const forwarded = await callee.inbox.next(requestOf("invut", "INVITE"), "the forwarded INVITE");
    const request = forwarded.message as SipRequest;
    assert.equal(request.getHeader("content-type"), "application/unknownformat");
    assert.deepEqual(request.body, asRequest(sent).body, "the body goes on byte for byte");
    answer(request, 415, [["Accept", "application/sdp"]]);
    const final = await uac.inbox.next(finalTo("invut"), "the relayed 415");
    assert.equal(final.status, 415);
    assert.equal(responseOf(final).getHeader("accept"), "application/sdp");
    ack(uac, sent, final);
  });

  test("regaut01 (§3.3.7 Unknown Authorization Scheme): ignored without auth, 401 with it", async (t: TestContext) => {
    // "A registrar that does not care about challenge-response authentication will simply ignore
    // the Authorization header field … A registrar that does care about challenge-response
    // authentication will reject this request with a 401, issuing a new challenge with a scheme
    // it understands." Over TCP, as its Via says.
    await t.test("registrar without authentication: 200, the field ignored", async () => {
      await overTcp(open, async (tcp) => {
        tcp.send(loopback("regaut01", tcp.sentBy));
        const r = responseOf(await tcp.inbox.next(finalTo("regaut01"), "a response"));
        assert.equal(r.status, 200);
        assert.deepEqual(r.contacts, [], "no Contact: a fetch of j.user's (no) bindings");
      });
    });
    await t.test("registrar with digest authentication: 401 with a Digest challenge", async () => {
      await overTcp(guarded, async (tcp) => {
        tcp.send(loopback("regaut01", tcp.sentBy));
        const r = responseOf(await tcp.inbox.next(finalTo("regaut01"), "a response"));
        assert.equal(r.status, 401);
        const challenges = r.getHeaders("www-authenticate");
        assert.ok(challenges.length > 0 && challenges.every((c) => /^Digest\s/i.test(c)));
      });
    });
  });

  test("multi01 (§3.3.8 Multiple Values in Single Value Required Fields): 400", async () => {
    // Two Call-IDs, Tos, Froms, CSeqs and Max-Forwards: "An element receiving this request
    // would respond with a 400 Bad Request error."
    const { uac } = await fromUac("multi01");
    const r = await uac.inbox.next(finalTo("multi01"), "a response to multi01");
    assert.equal(r.status, 400);
    assert.ok(!callee.inbox.has(mentions("multi01")), "nothing forwarded");
  });

  test("mcl01 (§3.3.9 Multiple Content-Length Values): 400; on TCP, the connection closed", async (t: TestContext) => {
    // "An element receiving this message should respond with an error. This request appeared
    // over UDP, so the remainder of the datagram can simply be discarded. If a request like this
    // arrives over TCP, the framing error is not recoverable, and the connection should be
    // closed."
    await t.test("over UDP: 400", async () => {
      const { uac } = await fromUac("mcl01");
      const r = await uac.inbox.next(finalTo("mcl01"), "a response to mcl01");
      assert.equal(r.status, 400);
    });
    await t.test("over TCP: 400, then the proxy closes the connection", async () => {
      const tcp = await TcpPeer.connect(portOf(open, "tcp"));
      try {
        tcp.send(loopback("mcl01", tcp.sentBy));
        const r = await tcp.inbox.next(finalTo("mcl01"), "a response to mcl01");
        assert.equal(r.status, 400);
        await within(tcp.closed, WAIT_MS, "the proxy closes the connection");
      } finally {
        tcp.close();
      }
    });
  });

  test("bcast (§3.3.10 200 OK Response with Broadcast Via Header Field Value): dropped", async () => {
    // A response whose top Via is the proxy's (so the proxy would forward it along the next Via)
    // and whose next Via is 255.255.255.255: "If a proxy followed normal response processing
    // rules blindly, it would forward this response to the broadcast address. To protect
    // against this as an attack vector, proxies should drop such responses." The proxy itself
    // must drop it: not even offer it to the transport, whose allowedDestinations (loopback
    // here, everything by default) is no defence against a broadcast.
    const stats = open.transport.stats;
    const refused = stats.refusedDestinations;
    const proxyUdp = open.listeners.find((l) => l.protocol === "udp")!;
    client.send(loopback("bcast", `${proxyUdp.address}:${proxyUdp.port}`), portOf(open, "udp"));
    // The proxy handles one socket's datagrams in order: when the OPTIONS sent after it is
    // answered, the broadcast response has been dealt with.
    assert.equal(await ping(open), 200);
    assert.equal(stats.refusedDestinations, refused, "no send to 255.255.255.255 was attempted");
    assert.ok(!client.inbox.has(mentions("bcast")) && !callee.inbox.has(mentions("bcast")));
  });

  test("zeromf (§3.3.11 Max-Forwards of Zero): 483, not forwarded", async () => {
    // "A proxy should not forward the request and should respond 483 (Too Many Hops)." Its
    // Request-URI is the registered callee's, so forwarding would have reached it.
    const { uac } = await fromUac("zeromf");
    const r = await uac.inbox.next(finalTo("zeromf"), "a response to zeromf");
    assert.equal(r.status, 483);
    assert.ok(!callee.inbox.has(mentions("zeromf")), "nothing forwarded");
  });

  test("cparam01 (§3.3.12 REGISTER with a Contact Header Parameter): 200, a contact-param", async () => {
    // "… 'unknownparam' parameter must be interpreted as being a contact-param and not a
    // url-param. This REGISTER should succeed. The response must not include 'unknownparam' as
    // a url-parameter for this binding. Likewise, 'unknownparam' must not appear as a
    // url-parameter in any binding during subsequent fetches."
    const { uac } = await fromUac("cparam01");
    const r = responseOf(await uac.inbox.next(finalTo("cparam01"), "a response to cparam01"));
    assert.equal(r.status, 200);
    for (const response of [r, await register("watson")]) {
      const [binding, ...others] = contactsOf(response, "+19725552222");
      assert.ok(binding !== undefined && others.length === 0, response.toString());
      assert.ok(!(binding.uri as SipUri).params.has("unknownparam"), "not a url-parameter");
      assert.ok(binding.params.has("unknownparam"), "a contact-param");
    }
  });

  test("cparam02 (§3.3.13 REGISTER with a URL Parameter): 200, a url-parameter", async () => {
    // "The register should succeed, and a subsequent retrieval of the registration must include
    // 'unknownparam' as a url-parameter."
    const { uac } = await fromUac("cparam02");
    const r = await uac.inbox.next(finalTo("cparam02"), "a response to cparam02");
    assert.equal(r.status, 200);
    const fetched = contactsOf(await register("watson"), "+19725552222");
    assert.ok(
      fetched.some((c) => (c.uri as SipUri).params.has("unknownparam")),
      fetched.map((c) => c.uri.toString()).join(", "),
    );
  });

  test("regescrt (§3.3.14 REGISTER with a URL Escaped Header): 200, the header kept", async () => {
    // "The register should succeed, and a subsequent retrieval of the registration must include
    // the escaped Route header in the contact URI for this binding."
    const { uac, sent: bytes } = await fromUac("regescrt");
    const sent = asRequest(bytes);
    const contact = sent.contacts[0]!.uri.toString();
    assert.match(contact, /\?Route=%3Csip:127\.0\.1\.\d+%3E$/);
    try {
      const r = await uac.inbox.next(finalTo("regescrt"), "a response to regescrt");
      assert.equal(r.status, 200);
      const fetched = (await register("user")).contacts.map((c) => c.uri);
      const binding = fetched.find((u) => u.toString() === contact);
      assert.ok(binding instanceof SipUri, fetched.join(", "));
      assert.deepEqual(binding.headers, [
        ["Route", (sent.contacts[0]!.uri as SipUri).headers[0]![1]],
      ]);
    } finally {
      // The binding goes, so that INVITEs to user@example.com reach only the callee.
      await register("user", `<${contact}>;expires=0`, {
        callId: sent.callId,
        cseq: sent.cseq.seq + 1,
      });
    }
  });

  test("sdp01 (§3.3.15 Unacceptable Accept Offering): forwarded; the UAS's 406 relayed", async () => {
    // The Accept is the UAS's business: "The recipient of this request could respond with a 406
    // Not Acceptable, with a Warning/399 …" A proxy forwards it like any INVITE, Accept and all.
    const { uac, sent } = await fromUac("sdp01");
    const forwarded = await callee.inbox.next(requestOf("sdp01", "INVITE"), "the forwarded INVITE");
    const request = forwarded.message as SipRequest;
    assert.equal(request.getHeader("accept"), "text/nobodyKnowsThis");
    assert.equal(request.maxForwards, 4);
    answer(request, 406, [["Warning", '399 callee "no body in text/nobodyKnowsThis"']]);
    const final = await uac.inbox.next(finalTo("sdp01"), "the relayed 406");
    assert.equal(final.status, 406);
    ack(uac, sent, final);
  });

  // ---- §3.4 backward compatibility -----------------------------------------------------------

  test("inv2543 (§3.4.1 INVITE with RFC 2543 Syntax): accepted and forwarded", async () => {
    // No Via branch, no From tag, no Content-Length (the body is the rest of the datagram), no
    // Max-Forwards: "a legal message per RFC 2543 … that should be accepted by RFC 3261 elements
    // that want to maintain backwards compatibility." The proxy forwards it to UserB, adding the
    // Max-Forwards it lacks (RFC 3261 §16.6 step 3: "… the proxy MUST add one with a field
    // value, which SHOULD be 70").
    const { uac, sent } = await fromUac("inv2543");
    const forwarded = await callee.inbox.next(
      requestOf("inv2543", "INVITE"),
      "the forwarded INVITE",
    );
    const request = forwarded.message as SipRequest;
    assert.equal(request.maxForwards, 70);
    assert.equal(request.vias[1]!.branch, undefined, "the RFC 2543 Via goes on as it came");
    assert.equal(request.from.tag, undefined);
    assert.deepEqual(request.body, asRequest(sent).body, "the whole body goes on");
    answer(request, 486);
    const final = await uac.inbox.next(finalTo("inv2543"), "the relayed 486");
    assert.equal(final.status, 486);
    ack(uac, sent, final);
  });

  // ---- afterwards ------------------------------------------------------------------------------

  test("after every message both proxies still answer OPTIONS with 200", async () => {
    assert.equal(await ping(open), 200);
    assert.equal(await ping(guarded), 200);
  });

  test("stop() leaves no socket or timer open", async () => {
    await stopAll();
    assert.deepEqual(await openHandles(), baseline);
  });
});
