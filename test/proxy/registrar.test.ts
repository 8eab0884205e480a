// The registrar of RFC 3261 §10.3 on the SQLite location store: add, refresh, remove
// (Expires 0 and "*"), query, several contacts per AOR, 423 with Min-Expires, the Call-ID and
// CSeq ordering rules, Path (RFC 3327), and what an authenticated user may register.
import assert from "node:assert/strict";
import { after, beforeEach, describe, test } from "node:test";
import { SqliteLocationStore } from "../../src/proxy/location-store/sqlite-store.js";
import { Registrar, aorOf, contactKey } from "../../src/proxy/registrar/registrar.js";
import {
  parseDatagram,
  parseUri,
  silentLogger,
  type FlowInfo,
  type SipRequest,
  type SipResponse,
} from "../../src/sip/index.js";

const DOMAIN = "sipsteer.test";
const T0 = 1_800_000_000_000;

const clientFlow: FlowInfo = {
  id: "udp|0|127.0.0.1|40000",
  protocol: "udp",
  local: { address: "127.0.0.11", port: 5060 },
  remote: { address: "127.0.0.1", port: 40000 },
  reliable: false,
  secure: false,
};
const fleetFlow: FlowInfo = {
  ...clientFlow,
  id: "udp|0|127.0.0.50|5060",
  remote: { address: "127.0.0.50", port: 5060 },
};

let seq = 0;
function register(
  headers: string[],
  user = "alice",
  callId = "reg-call-1",
  cseq?: number,
): SipRequest {
  const n = cseq ?? ++seq;
  const text = [
    `REGISTER sip:${DOMAIN} SIP/2.0`,
    "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-reg" + n,
    "Max-Forwards: 70",
    `From: <sip:${user}@${DOMAIN}>;tag=f${n}`,
    `To: <sip:${user}@${DOMAIN}>`,
    `Call-ID: ${callId}`,
    `CSeq: ${n} REGISTER`,
    ...headers,
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
  return parseDatagram(Buffer.from(text)) as SipRequest;
}

function contactsOf(response: SipResponse): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of response.contacts) out.set(c.uri.toString(), Number(c.params.get("expires")));
  return out;
}

describe("registrar (RFC 3261 §10.3)", () => {
  let store: SqliteLocationStore;
  let registrar: Registrar;
  let now = T0;

  beforeEach(async () => {
    await store?.stop();
    store = new SqliteLocationStore(":memory:");
    await store.start();
    now = T0;
    registrar = new Registrar({
      store,
      proxyId: "p1",
      defaultExpires: 3600,
      minExpires: 60,
      maxExpires: 7200,
      log: silentLogger,
      now: () => now,
      pathFor: () => "<sip:127.0.0.11:5060;lr>",
      servesDomain: (host) => host === DOMAIN,
      trustsPath: (flow) => flow.remote.address === "127.0.0.50",
    });
  });
  after(async () => {
    await store.stop();
  });

  test("adds a binding and answers 200 with every Contact and its expiry", async () => {
    const r = await registrar.handle(
      register(["Contact: <sip:alice@127.0.0.1:40000>", "Expires: 600"]),
      clientFlow,
      undefined,
    );
    assert.equal(r.status, 200);
    assert.deepEqual(contactsOf(r), new Map([["sip:alice@127.0.0.1:40000", 600]]));
    assert.ok(r.getHeader("date"), "Date header (RFC 3261 §10.3 step 8)");
    const [b] = await store.lookup("sip:alice@sipsteer.test", now);
    assert.equal(b!.proxy, "p1");
    assert.deepEqual(
      b!.path,
      ["<sip:127.0.0.11:5060;lr>"],
      "our Path entry: the fleet reaches alice through us",
    );
  });

  test("several contacts per AOR; a query (no Contact) lists them all", async () => {
    await registrar.handle(
      register(["Contact: <sip:alice@127.0.0.1:40000>;q=0.5"]),
      clientFlow,
      undefined,
    );
    await registrar.handle(
      register(
        ["Contact: <sip:alice@127.0.0.2:40001>;expires=120, <sip:alice@127.0.0.3:40002>"],
        "alice",
        "other-call",
      ),
      clientFlow,
      undefined,
    );
    const q = await registrar.handle(register([], "alice", "query-call"), clientFlow, undefined);
    assert.equal(q.status, 200);
    assert.deepEqual(
      contactsOf(q),
      new Map([
        ["sip:alice@127.0.0.2:40001", 120],
        ["sip:alice@127.0.0.3:40002", 3600],
        ["sip:alice@127.0.0.1:40000", 3600],
      ]),
    );
    // Highest q first (no q counts as 1.0).
    assert.equal(q.contacts.at(-1)!.uri.toString(), "sip:alice@127.0.0.1:40000");
  });

  test("refresh keeps one binding per contact and moves its expiry", async () => {
    const callId = "refresh-call";
    await registrar.handle(
      register(["Contact: <sip:alice@127.0.0.1:40000>;expires=100"], "alice", callId, 1),
      clientFlow,
      undefined,
    );
    now += 50_000;
    const r = await registrar.handle(
      register(["Contact: <sip:alice@127.0.0.1:40000>;expires=300"], "alice", callId, 2),
      clientFlow,
      undefined,
    );
    assert.deepEqual(contactsOf(r), new Map([["sip:alice@127.0.0.1:40000", 300]]));
  });

  test("Expires: 0 removes one contact; the others stay", async () => {
    const callId = "remove-call";
    await registrar.handle(
      register(
        ["Contact: <sip:alice@127.0.0.1:40000>, <sip:alice@127.0.0.2:40000>"],
        "alice",
        callId,
        1,
      ),
      clientFlow,
      undefined,
    );
    const r = await registrar.handle(
      register(["Contact: <sip:alice@127.0.0.1:40000>;expires=0"], "alice", callId, 2),
      clientFlow,
      undefined,
    );
    assert.deepEqual([...contactsOf(r).keys()], ["sip:alice@127.0.0.2:40000"]);
  });

  test('"Contact: *" with Expires: 0 removes every binding; without Expires: 0 it is 400', async () => {
    await registrar.handle(
      register(
        ["Contact: <sip:alice@127.0.0.1:40000>, <sip:alice@127.0.0.2:40000>"],
        "alice",
        "star",
        1,
      ),
      clientFlow,
      undefined,
    );
    const bad = await registrar.handle(
      register(["Contact: *", "Expires: 60"], "alice", "star", 2),
      clientFlow,
      undefined,
    );
    assert.equal(bad.status, 400);
    const r = await registrar.handle(
      register(["Contact: *", "Expires: 0"], "alice", "star", 3),
      clientFlow,
      undefined,
    );
    assert.equal(r.status, 200);
    assert.equal(r.contacts.length, 0);
    assert.equal((await store.lookup("sip:alice@sipsteer.test", now)).length, 0);
  });

  test("an interval below Min-Expires gets 423 with Min-Expires; above the maximum is cut", async () => {
    const brief = await registrar.handle(
      register(["Contact: <sip:alice@127.0.0.1:40000>;expires=30"]),
      clientFlow,
      undefined,
    );
    assert.equal(brief.status, 423);
    assert.equal(brief.getHeader("min-expires"), "60");
    const long = await registrar.handle(
      register(["Contact: <sip:alice@127.0.0.1:40000>", "Expires: 999999"]),
      clientFlow,
      undefined,
    );
    assert.deepEqual(contactsOf(long), new Map([["sip:alice@127.0.0.1:40000", 7200]]));
  });

  test("a REGISTER older than the binding's (same Call-ID, lower CSeq) fails and changes nothing", async () => {
    await registrar.handle(
      register(["Contact: <sip:alice@127.0.0.1:40000>;expires=100"], "alice", "order", 10),
      clientFlow,
      undefined,
    );
    const late = await registrar.handle(
      register(["Contact: <sip:alice@127.0.0.1:40000>;expires=0"], "alice", "order", 9),
      clientFlow,
      undefined,
    );
    assert.equal(late.status, 500);
    assert.equal((await store.lookup("sip:alice@sipsteer.test", now)).length, 1);
  });

  test("bindings expire: gone from lookups after their time", async () => {
    await registrar.handle(
      register(["Contact: <sip:alice@127.0.0.1:40000>;expires=60"]),
      clientFlow,
      undefined,
    );
    now += 61_000;
    assert.equal((await store.lookup("sip:alice@sipsteer.test", now)).length, 0);
    assert.equal(await store.purgeExpired(now), 1);
  });

  test("an authenticated user registers only its own AOR (403); foreign domains get 404", async () => {
    const other = await registrar.handle(
      register(["Contact: <sip:bob@127.0.0.1:40000>"], "bob"),
      clientFlow,
      "alice",
    );
    assert.equal(other.status, 403);
    const own = await registrar.handle(
      register(["Contact: <sip:alice@127.0.0.1:40000>"]),
      clientFlow,
      "alice",
    );
    assert.equal(own.status, 200);
    const text = register(["Contact: <sip:x@127.0.0.1:40000>"], "x")
      .toString()
      .replaceAll(`@${DOMAIN}`, "@elsewhere.test");
    const foreign = await registrar.handle(
      parseDatagram(Buffer.from(text)) as SipRequest,
      clientFlow,
      undefined,
    );
    assert.equal(foreign.status, 404);
  });

  test("Require with an unknown extension gets 420 and Unsupported; path is known", async () => {
    const r = await registrar.handle(
      register(["Contact: <sip:alice@127.0.0.1:40000>", "Require: path, frobnicate"]),
      clientFlow,
      undefined,
    );
    assert.equal(r.status, 420);
    assert.equal(r.getHeader("unsupported"), "frobnicate");
  });

  test("Path (RFC 3327) from a fleet member is kept and echoed; a client's own Path is not", async () => {
    const viaGateway = await registrar.handle(
      register(
        [
          "Contact: <sip:alice@127.0.0.1:40000>",
          "Path: <sip:gw@127.0.0.50:5060;lr>",
          "Supported: path",
        ],
        "alice",
        "gw-call",
      ),
      fleetFlow,
      undefined,
    );
    assert.equal(viaGateway.status, 200);
    assert.deepEqual(viaGateway.getHeaders("path"), ["<sip:gw@127.0.0.50:5060;lr>"]);
    const [b] = await store.lookup("sip:alice@sipsteer.test", now);
    assert.deepEqual(b!.path, ["<sip:127.0.0.11:5060;lr>", "<sip:gw@127.0.0.50:5060;lr>"]);

    const forged = await registrar.handle(
      register(
        [
          "Contact: <sip:carol@127.0.0.1:40000>",
          "Path: <sip:127.0.0.99:5099;lr>",
          "Supported: path",
        ],
        "carol",
      ),
      clientFlow,
      undefined,
    );
    assert.equal(forged.status, 200);
    assert.deepEqual(forged.getHeaders("path"), []);
    const [c] = await store.lookup("sip:carol@sipsteer.test", now);
    assert.deepEqual(c!.path, ["<sip:127.0.0.11:5060;lr>"]);
  });
});

describe("AOR and contact identity", () => {
  test("the AOR is scheme, unescaped user and lower-cased host (§10.3 step 5)", () => {
    assert.equal(
      aorOf(parseUri("sip:%61lice@SipSteer.Test:5070;transport=tcp")),
      "sip:alice@sipsteer.test",
    );
    assert.equal(aorOf(parseUri("sip:sipsteer.test")), undefined);
    assert.equal(aorOf(parseUri("tel:+15551234")), undefined);
  });

  test("contacts compare as URIs; RFC 5626 instance and reg-id win when present", () => {
    const request = register([
      'Contact: <sip:alice@127.0.0.1:40000;transport=udp>, <sip:alice@127.0.0.1:40000;transport=UDP;foo=bar>, <sip:a@x.invalid>;+sip.instance="<urn:uuid:1>";reg-id=1',
    ]);
    const [a, b, c] = request.contacts;
    assert.equal(contactKey(a!), contactKey(b!));
    assert.equal(contactKey(c!), 'instance:"<urn:uuid:1>"|1');
  });
});
