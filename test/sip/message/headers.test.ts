// The header grammar of RFC 3261 §20 and §25.1 as a proxy, registrar and user agent read it.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { NameAddr, SipUri } from "../../../src/sip/index.js";
import {
  SipParseError,
  SipRequest,
  formatAuthHeader,
  headerDisplayName,
  headerKey,
  parseAuthHeader,
  parseDatagram,
  parseNameAddr,
  parseNameAddrList,
  parseViaList,
} from "../../../src/sip/index.js";

const LIMITS = { maxUriBytes: 2048, maxParams: 64 };

/** A request with the mandatory fields and the given extra header lines. */
function request(extra: string[], method = "OPTIONS"): SipRequest {
  const lines = [
    `${method} sip:bob@example.com SIP/2.0`,
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1",
    "From: <sip:alice@example.com>;tag=a1",
    "To: <sip:bob@example.com>",
    "Call-ID: c1@127.0.0.1",
    `CSeq: 1 ${method}`,
    ...extra,
    "Content-Length: 0",
    "",
    "",
  ];
  const m = parseDatagram(Buffer.from(lines.join("\r\n"), "utf8"));
  assert.ok(m instanceof SipRequest);
  return m;
}

function syntaxError(fn: () => unknown, header?: string): void {
  assert.throws(fn, (e: unknown) => {
    return e instanceof SipParseError && (header === undefined || e.header === header);
  });
}

describe("header names (RFC 3261 §7.3.1, §7.3.3)", () => {
  test("compact forms and any case map to one key", () => {
    for (const [name, key] of [
      ["v", "via"],
      ["VIA", "via"],
      ["i", "call-id"],
      ["m", "contact"],
      ["l", "content-length"],
      ["c", "content-type"],
      ["f", "from"],
      ["t", "to"],
      ["k", "supported"],
      ["s", "subject"],
      ["e", "content-encoding"],
      ["o", "event"],
      ["r", "refer-to"],
      ["x", "session-expires"],
      ["X-Unknown-Thing", "x-unknown-thing"],
    ]) {
      assert.equal(headerKey(name!), key, name);
    }
  });

  test("headers we write are spelled the usual way", () => {
    assert.equal(headerDisplayName("call-id"), "Call-ID");
    assert.equal(headerDisplayName("i"), "Call-ID");
    assert.equal(headerDisplayName("cseq"), "CSeq");
    assert.equal(headerDisplayName("www-authenticate"), "WWW-Authenticate");
    assert.equal(headerDisplayName("max-forwards"), "Max-Forwards");
    assert.equal(headerDisplayName("record-route"), "Record-Route");
  });

  test("compact and long forms of one header are read together", () => {
    const m = request(["v: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK2", "m: <sip:a@10.0.0.3>"]);
    assert.equal(m.vias.length, 2);
    assert.equal(m.vias[1]!.transport, "TCP");
    assert.equal(m.contacts.length, 1);
  });
});

describe("folding and whitespace (RFC 3261 §7.3.1)", () => {
  test("a folded value is read as one line with single spaces", () => {
    const m = request([
      "Subject: I know you're there,",
      "    pick up the phone",
      "\tand talk to me!",
    ]);
    assert.equal(m.getHeader("subject"), "I know you're there, pick up the phone and talk to me!");
  });

  test("whitespace around the colon and at the end of a value is not part of it", () => {
    const m = request(["X-Spaced   :    value with  inner  spaces   "]);
    assert.equal(m.getHeader("x-spaced"), "value with  inner  spaces");
  });

  test("UTF-8 header values are decoded as text", () => {
    const m = request(["Subject: café ☎"]);
    assert.equal(m.getHeader("subject"), "café ☎");
  });
});

describe("name-addr and addr-spec (RFC 3261 §20.10, §20.20, §25.1)", () => {
  test("quoted display names with quoted-pairs and UTF-8", () => {
    const na = parseNameAddr(
      Buffer.from('"Zoë \\"Z\\" \\\\ Ünal" <sip:zoe@example.com>;tag=9', "utf8").toString("latin1"),
      LIMITS,
    );
    assert.equal(na.displayName, 'Zoë "Z" \\ Ünal');
    assert.equal(na.tag, "9");
  });

  test("token display names, and none at all", () => {
    assert.equal(parseNameAddr("Alice Smith <sip:a@x.com>", LIMITS).displayName, "Alice Smith");
    assert.equal(parseNameAddr("<sip:a@x.com>", LIMITS).displayName, undefined);
    assert.equal(parseNameAddr("sip:a@x.com", LIMITS).displayName, undefined);
  });

  test("in addr-spec form, parameters belong to the header; inside <> to the URI", () => {
    const bare = parseNameAddr("sip:a@x.com;tag=1", LIMITS);
    assert.equal(bare.tag, "1");
    assert.equal((bare.uri as SipUri).params.size, 0);
    const bracketed = parseNameAddr("<sip:a@x.com;transport=tcp>;tag=1", LIMITS);
    assert.equal((bracketed.uri as SipUri).transport, "tcp");
    assert.equal(bracketed.tag, "1");
  });

  test("header parameters admit LWS around ; and =, and quoted values", () => {
    const na = parseNameAddr('<sip:a@x.com> ; tag = 7 ; +sip.instance="<urn:uuid:1>"', LIMITS);
    assert.equal(na.tag, "7");
    assert.equal(na.params.get("+sip.instance"), '"<urn:uuid:1>"');
  });

  test("comma-separated lists split outside quotes and angle brackets", () => {
    const list = parseNameAddrList(
      '"Doe, John" <sip:doe,john@x.com>, <sip:k@y.com>;q=0.5 , sip:l@z.com',
      LIMITS,
    );
    assert.equal(list.length, 3);
    const [first, second, third] = list as NameAddr[];
    assert.equal(first!.displayName, "Doe, John");
    assert.equal((first!.uri as SipUri).user, "doe,john");
    assert.equal(second!.q, 0.5);
    assert.equal(third!.uri.toString(), "sip:l@z.com");
  });

  test("toString writes the name-addr form", () => {
    const na = parseNameAddr('"A \\"B\\"" <sip:a@x.com>;tag=1', LIMITS);
    assert.equal(na.toString(), '"A \\"B\\"" <sip:a@x.com>;tag=1');
    assert.equal(parseNameAddr("sip:a@x.com;tag=2", LIMITS).toString(), "<sip:a@x.com>;tag=2");
  });

  test("malformed values are refused", () => {
    for (const bad of [
      '"unterminated <sip:a@x.com>',
      "<sip:a@x.com",
      "< sip:a@x.com>",
      "<sip:a@x.com>;",
      "<sip:a@x.com>;tag=",
      "Bell, Alexander <sip:a@x.com>",
      "sip:a@x.com?h=v",
      "<sip:a@x.com> trailing",
      "<sip:a@x.com>, <sip:b@x.com>",
    ]) {
      syntaxError(() => parseNameAddr(bad, LIMITS));
    }
    syntaxError(() => parseNameAddrList("<sip:a@x.com>,", LIMITS));
  });
});

describe("Contact (RFC 3261 §10.2, §20.10)", () => {
  test("expires and q parameters; several values in fields and lines", () => {
    const m = request(
      [
        "Contact: <sip:a@10.0.0.1>;expires=3600;q=0.7, <sip:a@10.0.0.2>;q=1",
        "Contact: <sip:a@10.0.0.3>;expires=0",
      ],
      "REGISTER",
    );
    assert.deepEqual(
      m.contacts.map((c) => [c.expires, c.q]),
      [
        [3600, 0.7],
        [undefined, 1],
        [0, undefined],
      ],
    );
    assert.equal(m.contactWildcard, false);
  });

  test("the wildcard * (remove all bindings)", () => {
    const m = request(["Contact: *", "Expires: 0"], "REGISTER");
    assert.equal(m.contactWildcard, true);
    assert.deepEqual(m.contacts, []);
    assert.equal(m.expires, 0);
  });

  test("a malformed q reads as absent; a REGISTER's bad Contact is refused on arrival", () => {
    const m = request(["Contact: <sip:a@10.0.0.1>;q=2"], "REGISTER");
    assert.equal(m.contacts[0]!.q, undefined);
    assert.throws(
      () => request(["Contact: <sip:a@10.0.0.1"], "REGISTER"),
      (e: unknown) => e instanceof SipParseError && e.header === "contact" && e.status === 400,
    );
  });
});

describe("Via (RFC 3261 §20.42, RFC 3581, RFC 5118)", () => {
  test("branch, received, rport, maddr, ttl", () => {
    const [via] = parseViaList(
      "SIP/2.0/UDP pc33.example.com:5066;branch=z9hG4bK776;received=192.0.2.1;rport=5067;maddr=224.2.0.1;ttl=16",
      64,
    );
    assert.equal(via!.transport, "UDP");
    assert.equal(via!.host, "pc33.example.com");
    assert.equal(via!.port, 5066);
    assert.equal(via!.branch, "z9hG4bK776");
    assert.equal(via!.received, "192.0.2.1");
    assert.equal(via!.rport, 5067);
    assert.equal(via!.maddr, "224.2.0.1");
    assert.equal(via!.ttl, 16);
  });

  test("rport without a value is null; absent is undefined", () => {
    assert.equal(parseViaList("SIP/2.0/UDP h;rport;branch=z9hG4bKx", 64)[0]!.rport, null);
    assert.equal(parseViaList("SIP/2.0/UDP h;branch=z9hG4bKx", 64)[0]!.rport, undefined);
  });

  test("IPv6 sent-by and received", () => {
    const [via] = parseViaList("SIP/2.0/TCP [2001:db8::9]:5060;received=2001:db8::10", 64);
    assert.equal(via!.host, "[2001:db8::9]");
    assert.equal(via!.received, "2001:db8::10");
  });

  test("several values in one field, LWS around slashes, lower-case transport", () => {
    const vias = parseViaList("SIP / 2.0 / ws h1.example.com;branch=z9hG4bK1 , SIP/2.0/WSS h2", 64);
    assert.deepEqual(
      vias.map((v) => [v.transport, v.host]),
      [
        ["WS", "h1.example.com"],
        ["WSS", "h2"],
      ],
    );
  });

  test("malformed Vias are refused", () => {
    for (const bad of [
      "SIP/2.0/UDP",
      "SIP/2.0 UDP host",
      "SIP/2.0/UDP host;branch",
      "SIP/2.0/UDP host;branch=a:b",
      "SIP/2.0/UDP host;received=example.com",
      "SIP/2.0/UDP host;rport=70000",
      "SIP/2.0/UDP host;ttl=256",
      "SIP/2.0/UDP host:0x50",
      "SIP/2.0/UDPhost",
      "SIP/2.0/UDP host,",
    ]) {
      syntaxError(() => parseViaList(bad, 64));
    }
  });
});

describe("scalar and list headers", () => {
  test("CSeq, Max-Forwards, Content-Length, Expires, Call-ID", () => {
    const m = request(["Max-Forwards: 0070", "Expires: 3600"]);
    assert.deepEqual(m.cseq, { seq: 1, method: "OPTIONS" });
    assert.equal(m.maxForwards, 70);
    assert.equal(m.contentLength, 0);
    assert.equal(m.expires, 3600);
    assert.equal(m.callId, "c1@127.0.0.1");
  });

  test("Max-Forwards above 255 and a CSeq over 2^32-1 are refused", () => {
    assert.throws(
      () => request(["Max-Forwards: 256"]),
      (e: unknown) => e instanceof SipParseError && e.header === "max-forwards",
    );
    const m = request(["Expires: 99999999999"]);
    syntaxError(() => m.expires, "expires");
  });

  test("Supported, Require, Proxy-Require, Unsupported, Allow as token lists", () => {
    const m = request([
      "Supported: path, outbound,gruu",
      "k: timer",
      "Require: 100rel",
      "Proxy-Require: sec-agree",
      "Allow: INVITE, ACK , BYE",
      "Unsupported:",
    ]);
    assert.deepEqual(m.supported, ["path", "outbound", "gruu", "timer"]);
    assert.deepEqual(m.require, ["100rel"]);
    assert.deepEqual(m.proxyRequire, ["sec-agree"]);
    assert.deepEqual(m.allow, ["INVITE", "ACK", "BYE"]);
    assert.deepEqual(m.unsupported, []);
    syntaxError(() => request(["Supported: a b"]).supported, "supported");
  });

  test("Content-Type with parameters", () => {
    const m = request(['Content-Type: Multipart/Mixed ; boundary="x y"']);
    assert.equal(m.contentType!.type, "multipart");
    assert.equal(m.contentType!.subtype, "mixed");
    assert.equal(m.contentType!.params.get("boundary"), '"x y"');
  });

  test("Route, Record-Route and Path keep their order across fields", () => {
    const m = request([
      "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>",
      "Route: <sip:p1.example.com;lr>",
      "Route: <sip:p2.example.com;lr>",
      "Path: <sip:edge.example.com;lr>",
    ]);
    assert.deepEqual(
      m.routes.map((r) => (r.uri as SipUri).host),
      ["p1.example.com", "p2.example.com"],
    );
    assert.equal(m.recordRoutes.length, 2);
    assert.equal(m.paths[0]!.uri.toString(), "sip:edge.example.com;lr");
  });

  test("Date in RFC 1123 form, GMT only", () => {
    const m = request(["Date: Sat, 13 Nov 2010 23:29:00 GMT"]);
    assert.equal(m.date!.toISOString(), "2010-11-13T23:29:00.000Z");
    syntaxError(() => request(["Date: Sat, 13 Nov 2010 23:29:00 UTC"]).date, "date");
    syntaxError(() => request(["Date: Sat, 31 Feb 2010 23:29:00 GMT"]).date, "date");
  });
});

describe("authentication headers (RFC 3261 §20.7, §20.27, §20.44; RFC 8760)", () => {
  test("a Digest challenge with quoted and token values", () => {
    const m = request([
      'WWW-Authenticate: Digest realm="sipsteer.test", nonce="8a3c, 1", algorithm=SHA-256, qop="auth", opaque=""',
      'Proxy-Authenticate: Digest realm="p", nonce="n2", algorithm=MD5',
    ]);
    const [challenge] = m.wwwAuthenticates;
    assert.equal(challenge!.scheme, "Digest");
    assert.equal(challenge!.params.get("realm"), "sipsteer.test");
    assert.equal(challenge!.params.get("nonce"), "8a3c, 1");
    assert.equal(challenge!.params.get("algorithm"), "SHA-256");
    assert.equal(challenge!.params.get("qop"), "auth");
    assert.equal(challenge!.params.get("opaque"), "");
    assert.equal(m.proxyAuthenticates[0]!.params.get("realm"), "p");
  });

  test("Digest credentials, parameter names in any case", () => {
    const m = request([
      'Authorization: Digest username="alice", Realm="sipsteer.test", nonce="n", uri="sip:bob@example.com", response="0123abcd", qop=auth, nc=00000001, cnonce="c"',
    ]);
    const [cred] = m.authorizations;
    assert.equal(cred!.params.get("realm"), "sipsteer.test");
    assert.equal(cred!.params.get("uri"), "sip:bob@example.com");
    assert.equal(cred!.params.get("nc"), "00000001");
  });

  test("format and parse are symmetric", () => {
    const text = formatAuthHeader("Digest", [
      ["username", 'bob "the" builder', true],
      ["realm", "r", true],
      ["algorithm", "MD5", false],
    ]);
    assert.equal(text, 'Digest username="bob \\"the\\" builder", realm="r", algorithm=MD5');
    const parsed = parseAuthHeader(text, 64);
    assert.equal(parsed.params.get("username"), 'bob "the" builder');
  });

  test("malformed auth headers are refused", () => {
    for (const bad of ["Digest", "Digest realm", 'Digest realm="a", realm="b"', "Digest a=1 b=2"]) {
      if (bad === "Digest") {
        assert.equal(parseAuthHeader(bad, 64).params.size, 0);
        continue;
      }
      syntaxError(() => parseAuthHeader(bad, 64));
    }
  });
});
