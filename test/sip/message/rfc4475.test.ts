// RFC 4475, SIP torture test messages: one test per message of §3.1.1 (valid) and §3.1.2
// (invalid), and the codec's part of §3.2-§3.4. Each message is the raw file from the RFC's
// Appendix A archive; the hosts they name (192.0.2.x, example.com) are never contacted.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import {
  AbsoluteUri,
  SipParseError,
  SipRequest,
  SipResponse,
  SipUri,
  StreamFramer,
  buildParseErrorResponse,
  parseDatagram,
  unquote,
  type SipMessage,
} from "../../../src/sip/index.js";
import { fixturePath } from "../../helpers/paths.js";

function raw(name: string): Buffer {
  return readFileSync(fixturePath("rfc4475", `${name}.dat`));
}

function accept(name: string): SipMessage {
  const bytes = raw(name);
  const message = parseDatagram(bytes);
  assert.ok(message, `${name} parsed to a message`);
  return message;
}

function request(name: string): SipRequest {
  const m = accept(name);
  assert.ok(m instanceof SipRequest);
  return m;
}

function response(name: string): SipResponse {
  const m = accept(name);
  assert.ok(m instanceof SipResponse);
  return m;
}

function refuse(
  name: string,
  expected: { status: number | undefined; code: SipParseError["code"]; header?: string },
): SipParseError {
  let caught: unknown;
  try {
    parseDatagram(raw(name));
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof SipParseError, `${name} is refused with a SipParseError`);
  assert.equal(caught.code, expected.code);
  assert.equal(caught.status, expected.status);
  if (expected.header !== undefined) assert.equal(caught.header, expected.header);
  if (expected.status !== undefined) {
    const reply = buildParseErrorResponse(caught, raw(name));
    if (reply !== undefined) {
      // The fields are copied as received, so a response to a bad Via has that Via too.
      assert.match(reply.toString("latin1"), new RegExp(`^SIP/2\\.0 ${expected.status} `));
      assert.match(reply.toString("latin1"), /\r\nCSeq: [^\r]+\r\n/);
    }
  }
  return caught;
}

function sipUri(uri: unknown): SipUri {
  assert.ok(uri instanceof SipUri);
  return uri;
}

function roundTrips(name: string): void {
  const bytes = raw(name);
  assert.ok(parseDatagram(bytes)!.toBuffer().equals(bytes), `${name} serializes byte for byte`);
}

describe("RFC 4475 §3.1.1 valid messages are accepted", () => {
  test("§3.1.1.1 wsinv: a short tortuous INVITE (folding, LWS, compact forms, odd case)", () => {
    const m = request("wsinv");
    assert.equal(m.method, "INVITE");
    const ruri = sipUri(m.uri);
    assert.equal(ruri.user, "vivekg");
    assert.equal(ruri.host, "chair-dnrc.example.com");
    assert.equal(ruri.params.get("unknownparam"), null);
    assert.equal(m.to.tag, "1918181833n");
    assert.equal(m.from.displayName, 'J Rosenberg \\"');
    assert.equal(m.from.tag, "98asjd8");
    assert.equal(m.maxForwards, 68);
    assert.deepEqual(m.cseq, { seq: 9, method: "INVITE" });
    assert.equal(m.callId, "wsinv.ndaksdj@192.0.2.1");
    const vias = m.vias;
    assert.equal(vias.length, 3);
    assert.deepEqual(
      vias.map((v) => [v.transport, v.host, v.branch]),
      [
        ["UDP", "192.0.2.2", "390skdjuw"],
        ["TCP", "spindle.example.com", "z9hG4bK9ikj8"],
        ["UDP", "192.168.255.111", "z9hG4bK30239"],
      ],
    );
    assert.equal(m.getHeader("subject"), "");
    assert.equal(m.getHeader("NewFangledHeader"), "newfangled value continued newfangled value");
    assert.equal(m.getHeader("UnknownHeaderWithUnusualValue"), ";;,,;;,;");
    assert.ok(sipUri(m.routes[0]!.uri).params.has("lr"));
    const [contact] = m.contacts;
    assert.equal(contact!.displayName, 'Quoted string ""');
    assert.equal(contact!.q, 0.33);
    assert.equal(contact!.params.get("newparam"), "newvalue");
    assert.equal(contact!.params.get("secondparam"), null);
    assert.equal(m.contentType!.subtype, "sdp");
    assert.equal(m.body.length, 150);
    roundTrips("wsinv");
  });

  test("§3.1.1.2 intmeth: a wide range of valid characters", () => {
    const m = request("intmeth");
    assert.equal(m.method, "!interesting-Method0123456789_*+`.%indeed'~");
    const ruri = sipUri(m.uri);
    assert.equal(ruri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    assert.equal(ruri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    assert.equal(ruri.host, "example.com");
    assert.equal(m.topVia!.branch, "z9hG4bK-.!%66*_+`'~");
    assert.equal(m.to.displayName, "BEL:\x07 NUL:\x00 DEL:\x7f");
    assert.equal(m.from.displayName, "token1~` token2'+_ token3*%!.-");
    assert.equal(unquote(m.from.params.get("fromParam''~+*_!.-%")!), "работающий");
    assert.equal(m.from.tag, "_token~1'+`*%!-.");
    assert.equal(m.callId, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
    assert.equal(m.cseq.method, m.method);
    assert.equal(m.getHeader("extensionHeader-!.%*+_`'~"), "\ufeff大停電");
    roundTrips("intmeth");
  });

  test("§3.1.1.3 esc01: valid use of the % escaping mechanism", () => {
    const m = request("esc01");
    assert.equal(sipUri(m.uri).unescapedUser, "sips:user@example.com");
    assert.equal(sipUri(m.to.uri).unescapedUser, "user");
    assert.equal(sipUri(m.from.uri).unescapedUser, "I have spaces");
    const contact = sipUri(m.contacts[0]!.uri);
    assert.equal(contact.unescapedUser, "caller");
    // "value%41" is not "valueA": unescaping is never recursive.
    const [, nameParam] = contact.params.entries;
    assert.deepEqual(nameParam, ["n%61me", "v%61lue%25%34%31"]);
    assert.equal(decodeURIComponent(nameParam![1]!), "value%41");
    roundTrips("esc01");
  });

  test("§3.1.1.4 escnull: escaped nulls in URIs register two distinct contacts", () => {
    const m = request("escnull");
    assert.equal(sipUri(m.to.uri).unescapedUser, "null-\x00-null");
    const users = m.contacts.map((c) => sipUri(c.uri).unescapedUser);
    assert.deepEqual(users, ["\x00", "\x00\x00"]);
    roundTrips("escnull");
  });

  test("§3.1.1.5 esc02: % where it is not an escape", () => {
    const m = request("esc02");
    assert.equal(m.method, "RE%47IST%45R");
    assert.notEqual(m.method, "REGISTER");
    assert.equal(m.to.displayName, "%Z%45");
    assert.equal(m.contacts.length, 2, "C%6Fntact is another header, not a Contact");
    assert.equal(m.getHeader("C%6Fntact"), "<sip:alias2@host2.example.com>");
    assert.equal(m.topVia!.branch, "z9hG4bK209%fzsnel234");
    roundTrips("esc02");
  });

  test("§3.1.1.6 lwsdisp: no LWS between display name and <", () => {
    const m = request("lwsdisp");
    assert.equal(m.from.displayName, "caller");
    assert.equal(sipUri(m.from.uri).user, "caller");
    assert.equal(m.from.tag, "323");
    roundTrips("lwsdisp");
  });

  test("§3.1.1.7 longreq: long values in header fields", () => {
    const m = request("longreq");
    assert.match(m.to.displayName!, /^I have a user name of (extreme){10} proportion$/);
    assert.equal(sipUri(m.to.uri).port, 6000);
    assert.equal(m.from.tag, `12${"982".repeat(50)}424`);
    assert.equal(m.callId, `longreq.one${"really".repeat(20)}longcallid`);
    const vias = m.vias;
    assert.equal(vias.length, 34);
    assert.equal(vias[0]!.host, "sip33.example.com");
    assert.equal(vias[33]!.branch, `very${"long".repeat(50)}branchvalue`);
    assert.equal(vias[33]!.received, "192.0.2.5");
    assert.equal(m.getHeader(`Unknown-${"Long".repeat(20)}-Name`)!.length > 100, true);
    assert.equal(m.body.length, 150);
    roundTrips("longreq");
  });

  test("§3.1.1.8 dblreq: extra octets after the body of a UDP datagram are ignored", () => {
    const bytes = raw("dblreq");
    const m = request("dblreq");
    assert.equal(m.method, "REGISTER");
    assert.equal(m.body.length, 0);
    const out = m.toBuffer();
    assert.ok(!out.toString("latin1").includes("INVITE"), "the INVITE octets are not forwarded");
    assert.ok(out.equals(bytes.subarray(0, out.length)), "the REGISTER is kept byte for byte");
  });

  test("§3.1.1.9 semiuri: semicolon-separated parameters in the URI user part", () => {
    const uri = sipUri(request("semiuri").uri);
    assert.equal(uri.unescapedUser, "user;par=u@example.net");
    assert.equal(uri.host, "example.com");
    assert.equal(uri.params.size, 0);
    roundTrips("semiuri");
  });

  test("§3.1.1.10 transports: varied and unknown transport types", () => {
    const m = request("transports");
    assert.deepEqual(
      m.vias.map((v) => v.transport),
      ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"],
    );
    roundTrips("transports");
  });

  test("§3.1.1.11 mpart01: a multipart MIME body with NUL octets is framed exactly", () => {
    const m = request("mpart01");
    assert.equal(m.method, "MESSAGE");
    assert.equal(m.body.length, 553);
    assert.ok(m.body.includes(0), "the binary part keeps its NUL octets");
    assert.equal(m.contentType!.type, "multipart");
    assert.equal(m.contentType!.params.get("boundary"), "7a9cbec02ceef655");
    assert.equal(m.topVia!.rport, null);
    assert.ok(m.getHeader("Identity")!.startsWith("r5mwreLuyDRYBi"));
    roundTrips("mpart01");
  });

  test("§3.1.1.12 unreason: an unusual reason phrase with UTF-8", () => {
    const m = response("unreason");
    assert.equal(m.status, 200);
    assert.equal(m.reason, "= 2**3 * 5**2 но сто девяносто девять - простое");
    assert.equal(m.body.length, 154);
    roundTrips("unreason");
  });

  test("§3.1.1.13 noreason: an empty reason phrase", () => {
    const m = response("noreason");
    assert.equal(m.status, 100);
    assert.equal(m.reason, "");
    roundTrips("noreason");
  });
});

describe("RFC 4475 §3.1.2 invalid messages get what the RFC says", () => {
  test("§3.1.2.1 badinv01: extraneous header field separators → 400", () => {
    refuse("badinv01", { status: 400, code: "SIP_ERR_HEADER_SYNTAX", header: "via" });
  });

  test("§3.1.2.2 clerr: Content-Length larger than the datagram → 400; a stream waits", () => {
    refuse("clerr", { status: 400, code: "SIP_ERR_BODY_TRUNCATED" });
    const framer = new StreamFramer();
    assert.deepEqual(framer.push(raw("clerr")), [], "on a stream, wait for more data");
    assert.equal(framer.failure, undefined);
  });

  test("§3.1.2.3 ncl: negative Content-Length → 400; a stream's framing is lost", () => {
    refuse("ncl", { status: 400, code: "SIP_ERR_CONTENT_LENGTH" });
    const [item] = new StreamFramer().push(raw("ncl"));
    assert.equal(item?.kind, "error");
    assert.ok(item.kind === "error" && item.error.fatal, "the connection must be closed");
  });

  test("§3.1.2.4 scalar02: overlarge CSeq number → 400", () => {
    refuse("scalar02", { status: 400, code: "SIP_ERR_HEADER_SYNTAX", header: "cseq" });
  });

  test("§3.1.2.5 scalarlg: a response with overlarge scalars is dropped", () => {
    refuse("scalarlg", { status: undefined, code: "SIP_ERR_HEADER_SYNTAX", header: "cseq" });
  });

  test("§3.1.2.6 quotbal: unterminated quoted string in a display name → 400", () => {
    refuse("quotbal", { status: 400, code: "SIP_ERR_HEADER_SYNTAX", header: "to" });
  });

  test("§3.1.2.7 ltgtruri: <> around the Request-URI → 400", () => {
    refuse("ltgtruri", { status: 400, code: "SIP_ERR_REQUEST_URI" });
  });

  test("§3.1.2.8 lwsruri: whitespace inside the Request-URI → 400", () => {
    refuse("lwsruri", { status: 400, code: "SIP_ERR_START_LINE" });
  });

  test("§3.1.2.9 lwsstart: several SP between Request-Line elements → 400", () => {
    refuse("lwsstart", { status: 400, code: "SIP_ERR_START_LINE" });
  });

  test("§3.1.2.10 trws: SP at the end of the Request-Line → 400", () => {
    refuse("trws", { status: 400, code: "SIP_ERR_START_LINE" });
  });

  test("§3.1.2.11 escruri: escaped headers in the Request-URI → 400", () => {
    refuse("escruri", { status: 400, code: "SIP_ERR_REQUEST_URI" });
  });

  test("§3.1.2.12 baddate: a bad Date is accepted, and reported when asked for", () => {
    const m = request("baddate");
    assert.equal(m.method, "INVITE");
    assert.throws(
      () => m.date,
      (e: unknown) => e instanceof SipParseError && e.header === "date" && e.status === 400,
    );
    roundTrips("baddate");
  });

  test("§3.1.2.13 regbadct: a Contact URI with headers outside <> → 400", () => {
    refuse("regbadct", { status: 400, code: "SIP_ERR_HEADER_SYNTAX", header: "contact" });
  });

  test("§3.1.2.14 badaspec: spaces within addr-spec → 400", () => {
    refuse("badaspec", { status: 400, code: "SIP_ERR_HEADER_SYNTAX", header: "to" });
  });

  test("§3.1.2.15 baddn: non-token characters in an unquoted display name → 400", () => {
    refuse("baddn", { status: 400, code: "SIP_ERR_HEADER_SYNTAX", header: "from" });
  });

  test("§3.1.2.16 badvers: unknown protocol version → 505", () => {
    refuse("badvers", { status: 505, code: "SIP_ERR_VERSION" });
  });

  test("§3.1.2.17 mismatch01: start line and CSeq method differ → 400", () => {
    refuse("mismatch01", { status: 400, code: "SIP_ERR_CSEQ_MISMATCH" });
  });

  test("§3.1.2.18 mismatch02: unknown method with a CSeq mismatch → 501", () => {
    refuse("mismatch02", { status: 501, code: "SIP_ERR_CSEQ_MISMATCH" });
  });

  test("§3.1.2.19 bigcode: an overlarge response code is dropped silently", () => {
    const err = refuse("bigcode", { status: undefined, code: "SIP_ERR_STATUS_CODE" });
    assert.equal(buildParseErrorResponse(err, raw("bigcode")), undefined);
  });
});

describe("RFC 4475 §3.2-§3.4: what the codec sees of the semantic tests", () => {
  test("§3.2.1 badbranch: a bare magic cookie branch parses", () => {
    assert.equal(request("badbranch").topVia!.branch, "z9hG4bK");
  });

  test("§3.3.1 insuf: missing Call-ID, From and To → 400", () => {
    refuse("insuf", { status: 400, code: "SIP_ERR_MISSING_HEADER" });
  });

  test("§3.3.2 unkscm: an unknown Request-URI scheme parses (the application says 416)", () => {
    const uri = request("unkscm").uri;
    assert.ok(uri instanceof AbsoluteUri);
    assert.equal(uri.scheme, "nobodyknowsthisscheme");
  });

  test("§3.3.3 novelsc: a known but atypical scheme parses", () => {
    const uri = request("novelsc").uri;
    assert.ok(uri instanceof AbsoluteUri);
    assert.equal(uri.toString(), "soap.beep://192.0.2.103:3002");
  });

  test("§3.3.4 unksm2: unknown schemes in To, From and Contact parse", () => {
    const m = request("unksm2");
    assert.equal(m.to.uri.toString(), "isbn:2983792873");
    assert.equal(m.from.uri.toString(), "http://www.example.com");
    assert.equal(m.contacts[0]!.uri.toString(), "name:John_Smith");
  });

  test("§3.3.5 bext01: Require and Proxy-Require are read as token lists", () => {
    const m = request("bext01");
    assert.deepEqual(m.require, ["nothingSupportsThis", "nothingSupportsThisEither"]);
    assert.deepEqual(m.proxyRequire, ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]);
  });

  test("§3.3.6 invut: an unknown Content-Type parses", () => {
    assert.equal(request("invut").contentType!.subtype, "unknownformat");
  });

  test("§3.3.7 regaut01: an unknown Authorization scheme parses and forwards unchanged", () => {
    const m = request("regaut01");
    assert.equal(m.authorizations[0]!.scheme, "NoOneKnowsThisScheme");
    assert.equal(m.authorizations[0]!.params.get("opaque-data"), "here");
    roundTrips("regaut01");
  });

  test("§3.3.8 multi01: several values in single-value fields → 400", () => {
    refuse("multi01", { status: 400, code: "SIP_ERR_DUPLICATE_HEADER" });
  });

  test("§3.3.9 mcl01: several Content-Length values → 400", () => {
    refuse("mcl01", { status: 400, code: "SIP_ERR_CONTENT_LENGTH" });
    const [item] = new StreamFramer().push(raw("mcl01"));
    assert.ok(item?.kind === "error" && item.error.fatal, "a stream's framing is lost");
  });

  test("§3.3.10 bcast: a broadcast sent-by in a response parses (the proxy drops it)", () => {
    assert.equal(response("bcast").vias[1]!.host, "255.255.255.255");
  });

  test("§3.3.11 zeromf: Max-Forwards 0 parses", () => {
    assert.equal(request("zeromf").maxForwards, 0);
  });

  test("§3.3.12 cparam01: a parameter after an addr-spec belongs to the Contact", () => {
    const [contact] = request("cparam01").contacts;
    assert.equal(contact!.params.get("unknownparam"), null);
    assert.equal(sipUri(contact!.uri).params.size, 0);
  });

  test("§3.3.13 cparam02: a parameter inside <> belongs to the URI", () => {
    const [contact] = request("cparam02").contacts;
    assert.equal(sipUri(contact!.uri).params.get("unknownparam"), null);
    assert.equal(contact!.params.size, 0);
  });

  test("§3.3.14 regescrt: an escaped header in a Contact URI is kept", () => {
    const uri = sipUri(request("regescrt").contacts[0]!.uri);
    assert.deepEqual(uri.headers, [["Route", "%3Csip:sip.example.com%3E"]]);
    assert.equal(uri.toString(), "sip:user@example.com?Route=%3Csip:sip.example.com%3E");
  });

  test("§3.3.15 sdp01: an unacceptable Accept parses", () => {
    assert.equal(request("sdp01").getHeader("accept"), "text/nobodyKnowsThis");
  });

  test("§3.4.1 inv2543: RFC 2543 syntax parses; the body is the rest of the datagram", () => {
    const m = request("inv2543");
    assert.equal(m.topVia!.branch, undefined);
    assert.equal(m.from.tag, undefined);
    assert.equal(m.maxForwards, undefined);
    assert.equal(m.contentLength, undefined);
    assert.ok(m.body.toString("latin1").startsWith("v=0"));
    roundTrips("inv2543");
  });
});
