// Building, editing and serializing messages: what a proxy does to a request it forwards
// (RFC 3261 §16.6) and a UAS to the response it makes (§8.2.6).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { SipUri } from "../../../src/sip/index.js";
import {
  SipParseError,
  SipRequest,
  SipResponse,
  createResponse,
  parseDatagram,
  parseUri,
  serializeMessage,
} from "../../../src/sip/index.js";

const INVITE = [
  "INVITE sip:bob@biloxi.example.com SIP/2.0",
  "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds ;rport",
  "Max-Forwards: 70",
  "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
  "To: Bob <sip:bob@biloxi.example.com>",
  "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
  "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
  "CSeq: 314159 INVITE",
  "X-Odd-Spacing  :   kept   exactly as sent  ",
  "Contact: <sip:alice@pc33.atlanta.example.com>",
  "Content-Type: application/sdp",
  "Content-Length: 4",
  "",
  "v=0\n",
].join("\r\n");

function parsed(text = INVITE): SipRequest {
  const m = parseDatagram(Buffer.from(text, "latin1"));
  assert.ok(m instanceof SipRequest);
  return m;
}

describe("serializing a parsed message", () => {
  test("an unchanged message is its received bytes", () => {
    const bytes = Buffer.from(INVITE, "latin1");
    const m = parseDatagram(bytes)!;
    assert.ok(m.toBuffer().equals(bytes));
    assert.ok(serializeMessage(m).equals(bytes));
  });

  test("header order and unknown headers survive a round trip byte for byte", () => {
    const out = parsed().toBuffer().toString("latin1");
    assert.ok(out.includes("\r\nX-Odd-Spacing  :   kept   exactly as sent  \r\n"));
  });
});

describe("a proxy's edits (RFC 3261 §16.6)", () => {
  test("push a Via, decrement Max-Forwards, add Record-Route, pop a Route", () => {
    const m = parsed();
    m.prependHeader("Via", "SIP/2.0/UDP 127.0.0.11:5060;branch=z9hG4bKproxy1");
    m.setHeader("Max-Forwards", String(m.maxForwards! - 1));
    m.prependHeader("Record-Route", "<sip:127.0.0.11;lr>");
    m.removeFirstValue("Route");
    const out = m.toBuffer().toString("latin1");
    const lines = out.split("\r\n");
    assert.equal(lines[0], "INVITE sip:bob@biloxi.example.com SIP/2.0");
    // Without a Record-Route yet, ours goes first of all (as Kamailio and OpenSIPS do).
    assert.equal(lines[1], "Record-Route: <sip:127.0.0.11;lr>");
    assert.equal(lines[2], "Via: SIP/2.0/UDP 127.0.0.11:5060;branch=z9hG4bKproxy1");
    assert.equal(
      lines[3],
      "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds ;rport",
    );
    assert.ok(lines.includes("Max-Forwards: 69"));
    assert.ok(lines.includes("Route: <sip:p2.example.com;lr>"));
    assert.ok(lines.includes("X-Odd-Spacing  :   kept   exactly as sent  "));
    assert.ok(out.endsWith("\r\n\r\nv=0\n"));

    const again = parsed(out);
    assert.equal(again.vias.length, 2);
    assert.equal(again.topVia!.branch, "z9hG4bKproxy1");
    assert.equal(again.maxForwards, 69);
    assert.deepEqual(
      again.routes.map((r) => r.uri.toString()),
      ["sip:p2.example.com;lr"],
    );
    assert.equal(again.recordRoutes[0]!.uri.toString(), "sip:127.0.0.11;lr");
    assert.equal(again.body.toString(), "v=0\n");
  });

  test("Record-Route goes before existing ones; the last Route value removes the field", () => {
    const m = parsed(
      INVITE.replace(
        "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
        "Route: <sip:p1.example.com;lr>\r\nRecord-Route: <sip:up.example.com;lr>",
      ),
    );
    m.removeFirstValue("route");
    assert.equal(m.hasHeader("route"), false);
    m.prependHeader("Record-Route", "<sip:me.example.com;lr>");
    assert.deepEqual(
      m.recordRoutes.map((r) => (r.uri as SipUri).host),
      ["me.example.com", "up.example.com"],
    );
  });

  test("popping the top Via of a response (RFC 3261 §16.7 step 3)", () => {
    const res = parseDatagram(
      Buffer.from(
        [
          "SIP/2.0 200 OK",
          "Via: SIP/2.0/UDP 127.0.0.11;branch=z9hG4bKp, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKc",
          "From: <sip:a@x>;tag=1",
          "To: <sip:b@y>;tag=2",
          "Call-ID: x",
          "CSeq: 1 INVITE",
          "Content-Length: 0",
          "",
          "",
        ].join("\r\n"),
      ),
    )!;
    res.removeFirstValue("Via");
    assert.equal(res.vias.length, 1);
    assert.equal(res.topVia!.host, "10.0.0.1");
    assert.ok(res.toString().includes("\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKc\r\n"));
  });

  test("a new Request-URI rewrites only the Request-Line", () => {
    const m = parsed();
    m.uri = parseUri("sip:bob@127.0.0.12:5060;transport=tcp");
    const out = m.toString();
    assert.ok(out.startsWith("INVITE sip:bob@127.0.0.12:5060;transport=tcp SIP/2.0\r\nVia: "));
    assert.equal(parsed(out).callId, "a84b4c76e66710@pc33.atlanta.example.com");
  });

  test("setHeader replaces every field of the name in place; removeHeader drops them", () => {
    const m = parsed(
      INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 INVITE\r\nX-A: 1\r\nX-A: 2"),
    );
    m.setHeader("x-a", "3");
    assert.deepEqual(m.getHeaders("X-A"), ["3"]);
    const names = m.fields.map((f) => f.key);
    assert.equal(names.indexOf("x-a"), names.indexOf("cseq") + 1);
    m.removeHeader("x-a");
    assert.equal(m.getHeader("x-a"), undefined);
  });

  test("a clone is edited without touching the original", () => {
    const m = parsed();
    const fork = m.clone();
    fork.prependHeader("Via", "SIP/2.0/UDP 127.0.0.11;branch=z9hG4bKfork");
    fork.uri = parseUri("sip:bob@127.0.0.13");
    assert.equal(m.vias.length, 1);
    assert.equal(m.uri.toString(), "sip:bob@biloxi.example.com");
    assert.equal(fork.vias.length, 2);
    assert.ok(m.toBuffer().equals(Buffer.from(INVITE, "latin1")));
  });

  test("setBody keeps Content-Length and Content-Type in step", () => {
    const m = parsed();
    m.setBody("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n", "application/sdp");
    const again = parsed(m.toString());
    assert.equal(again.contentLength, again.body.length);
    assert.equal(again.body.toString(), "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n");
    m.setBody(Buffer.alloc(0));
    const empty = parsed(m.toString());
    assert.equal(empty.contentLength, 0);
    assert.equal(empty.hasHeader("content-type"), false);
  });
});

describe("building messages in code", () => {
  test("a request built from parts serializes and parses back", () => {
    const req = new SipRequest({
      method: "REGISTER",
      uri: "sip:sipsteer.test",
      headers: [
        ["Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKreg1;rport"],
        ["Max-Forwards", "70"],
        ["From", '"Zoë" <sip:zoe@sipsteer.test>;tag=z1'],
        ["To", "<sip:zoe@sipsteer.test>"],
        ["Call-ID", "reg-1"],
        ["CSeq", "1 REGISTER"],
        ["Contact", "<sip:zoe@127.0.0.1:5070>;expires=600"],
        ["Content-Length", "0"],
      ],
    });
    const back = parsed(req.toBuffer().toString("latin1"));
    assert.equal(back.method, "REGISTER");
    assert.equal(back.from.displayName, "Zoë");
    assert.equal(back.contacts[0]!.expires, 600);
  });

  test("createResponse copies Via, From, To, Call-ID and CSeq and adds a To tag", () => {
    const req = parsed();
    const res = createResponse(req, 180, { toTag: "bobtag" });
    assert.equal(res.status, 180);
    assert.equal(res.reason, "Ringing");
    const back = parseDatagram(res.toBuffer());
    assert.ok(back instanceof SipResponse);
    assert.equal(back.to.tag, "bobtag");
    assert.equal(back.from.tag, "1928301774");
    assert.equal(back.callId, req.callId);
    assert.deepEqual(back.cseq, req.cseq);
    assert.equal(back.topVia!.branch, "z9hG4bK776asdhds");
    assert.equal(createResponse(req, 100, { toTag: "x" }).to.tag, undefined, "no tag on 100");
  });

  test("responses refuse impossible status codes; reasons may be UTF-8", () => {
    assert.throws(() => new SipResponse({ status: 99 }), RangeError);
    assert.throws(() => new SipResponse({ status: 700 }), RangeError);
    const res = new SipResponse({ status: 603, reason: "Déclin" });
    assert.ok(res.toBuffer().toString("utf8").startsWith("SIP/2.0 603 Déclin\r\n"));
  });

  test("a missing mandatory header is reported when read", () => {
    const req = new SipRequest({ method: "OPTIONS", uri: "sip:a@b" });
    assert.throws(
      () => req.callId,
      (e: unknown) => e instanceof SipParseError && e.code === "SIP_ERR_MISSING_HEADER",
    );
  });
});
