// RFC 3261 §19.1 (SIP and SIPS URIs), §25.1 (grammar), RFC 3966 (tel), RFC 5118 (IPv6).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  AbsoluteUri,
  Params,
  SipParseError,
  SipUri,
  TelUri,
  parseUri,
} from "../../../src/sip/index.js";

function sip(text: string): SipUri {
  const uri = parseUri(text);
  assert.ok(uri instanceof SipUri, `${text} is a SIP URI`);
  return uri;
}

function refused(text: string, code: SipParseError["code"] = "SIP_ERR_HEADER_SYNTAX"): void {
  assert.throws(
    () => parseUri(text),
    (e: unknown) => e instanceof SipParseError && e.code === code,
    `${JSON.stringify(text)} is refused with ${code}`,
  );
}

describe("SIP URIs (RFC 3261 §19.1)", () => {
  test("reads user, password, host, port, parameters and headers", () => {
    const uri = sip("sips:alice:secret@atlanta.example.com:5061;transport=tcp;lr?subject=project");
    assert.equal(uri.scheme, "sips");
    assert.equal(uri.user, "alice");
    assert.equal(uri.password, "secret");
    assert.equal(uri.host, "atlanta.example.com");
    assert.equal(uri.port, 5061);
    assert.equal(uri.transport, "tcp");
    assert.equal(uri.params.get("lr"), null);
    assert.equal(uri.params.get("maddr"), undefined);
    assert.deepEqual(uri.headers, [["subject", "project"]]);
  });

  test("the scheme and parameter names are case-insensitive", () => {
    const uri = sip("SIP:bob@Biloxi.Example.COM;Transport=UDP");
    assert.equal(uri.scheme, "sip");
    assert.equal(uri.params.get("transport"), "UDP");
    assert.equal(uri.transport, "udp");
    assert.equal(uri.hostname, "biloxi.example.com");
  });

  test("digit-only labels are fine in a hostname; only all-digit names must be IPv4", () => {
    assert.equal(sip("sip:a@1234.example.com").host, "1234.example.com");
    assert.equal(sip("sip:a@300.example.com").host, "300.example.com");
    assert.equal(sip("sip:a@255.255.255.255").host, "255.255.255.255");
    refused("sip:a@300.1.1.1");
    refused("sip:a@1.1.1.1.");
    refused("sip:a@1.1.1.1.1");
    refused("sip:a@01234.1.1.1");
  });

  test("a URI without a user part", () => {
    const uri = sip("sip:127.0.0.11:5060;lr");
    assert.equal(uri.user, undefined);
    assert.equal(uri.host, "127.0.0.11");
    assert.equal(uri.port, 5060);
  });

  test("IPv6 references keep their brackets; hostname drops them (RFC 5118)", () => {
    const uri = sip("sip:[2001:db8::10]:5070;maddr=[2001:db8::9]");
    assert.equal(uri.host, "[2001:db8::10]");
    assert.equal(uri.hostname, "2001:db8::10");
    assert.equal(uri.port, 5070);
    assert.equal(uri.params.get("maddr"), "[2001:db8::9]");
    assert.equal(sip("sip:alice@[::ffff:192.0.2.1]").hostname, "::ffff:192.0.2.1");
    assert.equal(sip("sip:[::1]").host, "[::1]");
  });

  test("escapes are kept as written and undone on request (§19.1.2, §19.1.4)", () => {
    const uri = sip("sip:%61lice%20smith@example.com");
    assert.equal(uri.user, "%61lice%20smith");
    assert.equal(uri.unescapedUser, "alice smith");
    assert.equal(uri.toString(), "sip:%61lice%20smith@example.com");
  });

  test("user-unreserved characters, including ; ? / in the user part", () => {
    const uri = sip("sip:+1-212-555-1212;phone-context=x?y/z@gw.example.com;user=phone");
    assert.equal(uri.user, "+1-212-555-1212;phone-context=x?y/z");
    assert.equal(uri.params.get("user"), "phone");
  });

  test("a parsed URI prints as received; a changed copy is rebuilt", () => {
    const text = "sip:Alice@Example.COM:5060;Transport=TCP";
    const uri = sip(text);
    assert.equal(uri.toString(), text);
    const moved = uri.with({ host: "127.0.0.12", params: uri.params.without("transport") });
    assert.equal(moved.toString(), "sip:Alice@127.0.0.12:5060");
    assert.equal(uri.toString(), text, "the original is unchanged");
  });

  test("SipUri.from escapes a plain-text user", () => {
    const uri = SipUri.from({ scheme: "sip", user: "a b@c", host: "example.com" });
    assert.equal(uri.toString(), "sip:a%20b%40c@example.com");
    assert.equal(sip(uri.toString()).unescapedUser, "a b@c");
  });

  test("Params.with and without return changed copies", () => {
    const params = new Params([["lr", null]]).with("transport", "ws");
    assert.equal(params.toString(), ";lr;transport=ws");
    assert.equal(params.with("LR", "on").toString(), ";lr=on;transport=ws");
    assert.equal(params.without("lr").toString(), ";transport=ws");
  });

  test("malformed SIP URIs are refused", () => {
    for (const bad of [
      "sip:",
      "sip:@example.com",
      "sip:alice@",
      "sip:alice@exa mple.com",
      "sip:alice@example.com:",
      "sip:alice@example.com:99999",
      "sip:alice@example.com:123456",
      "sip:alice@example..com",
      "sip:alice@-example.com",
      "sip:alice@example-.com",
      "sip:alice@256.1.1.1",
      "sip:alice@1.2.3",
      "sip:alice@[2001:db8::g]",
      "sip:alice@[2001:db8::1",
      "sip:al%zzice@example.com",
      "sip:alice@example.com;",
      "sip:alice@example.com;=x",
      "sip:alice@example.com;a=",
      "sip:alice@example.com?",
      "sip:alice@example.com?novalue",
      "sip:alice@example.com>",
      "sip:alice@example.com ;lr",
      "<sip:alice@example.com>",
      "sip:al ice@example.com",
    ]) {
      refused(bad);
    }
  });

  test("limits: URI length and parameter count", () => {
    const long = `sip:${"a".repeat(3000)}@example.com`;
    assert.throws(
      () => parseUri(long, { maxUriBytes: 2048, maxParams: 64 }),
      (e: unknown) => e instanceof SipParseError && e.code === "SIP_ERR_URI_TOO_LONG",
    );
    const many = `sip:example.com${";p".repeat(70)}`;
    assert.throws(
      () => parseUri(many, { maxUriBytes: 2048, maxParams: 64 }),
      (e: unknown) => e instanceof SipParseError && e.code === "SIP_ERR_TOO_MANY_PARAMS",
    );
  });
});

describe("tel URIs (RFC 3966) and other schemes", () => {
  test("a global number with parameters", () => {
    const uri = parseUri("tel:+1-201-555-0123;ext=1234");
    assert.ok(uri instanceof TelUri);
    assert.equal(uri.number, "+1-201-555-0123");
    assert.ok(uri.isGlobal);
    assert.equal(uri.params.get("ext"), "1234");
    assert.equal(uri.toString(), "tel:+1-201-555-0123;ext=1234");
  });

  test("a local number needs phone-context", () => {
    const uri = parseUri("tel:7042;phone-context=example.com");
    assert.ok(uri instanceof TelUri);
    assert.ok(!uri.isGlobal);
    refused("tel:7042");
    refused("tel:+1 201");
  });

  test("unknown schemes are kept opaque", () => {
    const uri = parseUri("urn:service:sos");
    assert.ok(uri instanceof AbsoluteUri);
    assert.equal(uri.scheme, "urn");
    assert.equal(uri.opaque, "service:sos");
    assert.equal(uri.toString(), "urn:service:sos");
    refused("1abc:foo");
    refused("noscheme");
    refused("http://exa mple.com");
  });
});
