// Framing: byte streams by Content-Length (RFC 3261 §18.3), keep-alives (RFC 5626 §4.4.1),
// WebSocket messages (RFC 7118 §5), and the limits that bound what a peer can make us hold.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  SipParseError,
  SipRequest,
  StreamFramer,
  parseDatagram,
  parseLimits,
  parseWebSocketMessage,
  type FramedItem,
} from "../../../src/sip/index.js";

function options(n: number, body = ""): string {
  return [
    `OPTIONS sip:bob@example.com SIP/2.0`,
    `Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK${n}`,
    "From: <sip:alice@example.com>;tag=a",
    "To: <sip:bob@example.com>",
    `Call-ID: call-${n}`,
    `CSeq: ${n} OPTIONS`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    "",
    body,
  ].join("\r\n");
}

function callIds(items: FramedItem[]): string[] {
  return items.map((i) => (i.kind === "message" ? i.message.callId : i.kind));
}

describe("StreamFramer (TCP, TLS)", () => {
  test("several messages in one chunk", () => {
    const framer = new StreamFramer();
    const items = framer.push(Buffer.from(options(1) + options(2, "hello") + options(3)));
    assert.deepEqual(callIds(items), ["call-1", "call-2", "call-3"]);
    const second = items[1]!;
    assert.ok(second.kind === "message" && second.message.body.toString() === "hello");
    assert.equal(framer.buffered, 0);
  });

  test("one message split over many chunks, down to one byte at a time", () => {
    const bytes = Buffer.from(options(7, "body-bytes"));
    for (const size of [1, 2, 3, 7, 50]) {
      const framer = new StreamFramer();
      const items: FramedItem[] = [];
      for (let i = 0; i < bytes.length; i += size)
        items.push(...framer.push(bytes.subarray(i, i + size)));
      assert.deepEqual(callIds(items), ["call-7"], `chunks of ${size}`);
      const [item] = items;
      assert.ok(item!.kind === "message" && item!.message.toBuffer().equals(bytes));
    }
  });

  test("a message is whole only when its body is", () => {
    const framer = new StreamFramer();
    const text = options(1, "0123456789");
    assert.deepEqual(framer.push(Buffer.from(text.slice(0, -3))), []);
    assert.deepEqual(callIds(framer.push(Buffer.from(text.slice(-3)))), ["call-1"]);
  });

  test("CRLF keep-alives, server side: a double CRLF is a ping, a lone one is skipped", () => {
    const framer = new StreamFramer();
    assert.deepEqual(callIds(framer.push(Buffer.from("\r\n\r\n"))), ["ping"]);
    assert.deepEqual(callIds(framer.push(Buffer.from("\r\n"))), [], "wait: a ping may follow");
    assert.deepEqual(callIds(framer.push(Buffer.from("\r\n"))), ["ping"]);
    assert.deepEqual(callIds(framer.push(Buffer.from(`\r\n${options(4)}\r\n\r\n`))), [
      "call-4",
      "ping",
    ]);
  });

  test("CRLF keep-alives, client side: each CRLF is a pong (RFC 5626 §4.4.1)", () => {
    const framer = new StreamFramer({ role: "client" });
    assert.deepEqual(callIds(framer.push(Buffer.from("\r\n"))), ["pong"]);
    assert.deepEqual(callIds(framer.push(Buffer.from(`\r\n${options(5)}`))), ["pong", "call-5"]);
  });

  test("no Content-Length on a stream is fatal: the connection must close", () => {
    const framer = new StreamFramer();
    const text = options(1).replace("Content-Length: 0\r\n", "");
    const [item] = framer.push(Buffer.from(text + options(2)));
    assert.ok(item?.kind === "error");
    assert.equal(item.error.code, "SIP_ERR_CONTENT_LENGTH");
    assert.equal(item.error.status, 400);
    assert.ok(item.error.fatal);
    assert.ok(framer.failure);
    assert.deepEqual(framer.push(Buffer.from(options(3))), [], "nothing more is read");
  });

  test("a bad header in a well-framed message is reported and the stream goes on", () => {
    const framer = new StreamFramer();
    const bad = options(1).replace("To: <sip:bob@example.com>", "To: <sip:bob@example.com");
    const items = framer.push(Buffer.from(bad + options(2)));
    assert.equal(items.length, 2);
    assert.ok(items[0]!.kind === "error" && !items[0]!.error.fatal);
    assert.equal(items[0]!.kind === "error" && items[0]!.error.header, "to");
    assert.deepEqual(callIds(items.slice(1)), ["call-2"]);
  });

  test("a malformed response on a stream is reported with no answer to send", () => {
    const framer = new StreamFramer();
    const response =
      "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n";
    const [item] = framer.push(Buffer.from(response));
    assert.ok(item?.kind === "error");
    assert.equal(item.error.status, undefined);
  });

  test("a stream that never ends its header section is cut at the message limit", () => {
    const limits = parseLimits({ maxMessageBytes: 1024 });
    const framer = new StreamFramer({ limits });
    let items: FramedItem[] = [];
    const chunk = Buffer.from("X-Filler: " + "a".repeat(100) + "\r\n");
    items.push(...framer.push(Buffer.from("OPTIONS sip:a@b SIP/2.0\r\n")));
    for (let i = 0; i < 20 && items.length === 0; i++) items = framer.push(chunk);
    assert.equal(items[0]?.kind, "error");
    assert.ok(items[0]!.kind === "error" && items[0]!.error.code === "SIP_ERR_MESSAGE_TOO_LARGE");
    assert.ok(framer.buffered <= 1024 + chunk.length);
  });

  test("a Content-Length beyond the limit is refused before the body arrives", () => {
    const framer = new StreamFramer({ limits: parseLimits({ maxMessageBytes: 2000 }) });
    const [item] = framer.push(
      Buffer.from(options(1).replace("Content-Length: 0", "Content-Length: 5000")),
    );
    assert.ok(item?.kind === "error" && item.error.code === "SIP_ERR_MESSAGE_TOO_LARGE");
    assert.equal(item.error.status, 513);
  });
});

describe("WebSocket messages (RFC 7118 §5)", () => {
  test("one message per WebSocket message; Content-Length may be left out", () => {
    const text = options(1, "hi").replace("Content-Length: 2\r\n", "");
    const m = parseWebSocketMessage(text);
    assert.ok(m instanceof SipRequest);
    assert.equal(m.body.toString(), "hi");
    assert.equal(m.contentLength, undefined);
  });

  test("text frames with UTF-8 and binary frames parse alike", () => {
    const text = options(1, "grüße");
    const fromText = parseWebSocketMessage(text)!;
    const fromBinary = parseWebSocketMessage(Buffer.from(text, "utf8"))!;
    assert.equal(fromText.body.toString("utf8"), "grüße");
    assert.ok(fromText.toBuffer().equals(fromBinary.toBuffer()));
  });

  test("a keep-alive of CRLFs is not a message", () => {
    assert.equal(parseWebSocketMessage("\r\n\r\n"), null);
    assert.equal(parseDatagram(Buffer.from("\r\n\r\n")), null);
  });
});

describe("limits", () => {
  function refusedWith(
    text: string,
    code: SipParseError["code"],
    status: number | undefined,
    limits = parseLimits(),
  ): void {
    assert.throws(
      () => parseDatagram(Buffer.from(text), { limits }),
      (e: unknown) => e instanceof SipParseError && e.code === code && e.status === status,
      code,
    );
  }

  test("message size → 513", () => {
    refusedWith(
      options(1, "x".repeat(3000)),
      "SIP_ERR_MESSAGE_TOO_LARGE",
      513,
      parseLimits({ maxMessageBytes: 2048 }),
    );
  });

  test("header count, header length, URI length, parameter count", () => {
    const many = options(1).replace(
      "CSeq: 1 OPTIONS",
      "CSeq: 1 OPTIONS" + "\r\nX-H: 1".repeat(200),
    );
    refusedWith(many, "SIP_ERR_TOO_MANY_HEADERS", 400);
    const long = options(1).replace(
      "CSeq: 1 OPTIONS",
      "CSeq: 1 OPTIONS\r\nX-H: " + "a".repeat(9000),
    );
    refusedWith(long, "SIP_ERR_HEADER_TOO_LONG", 400, parseLimits({ maxMessageBytes: 65535 }));
    const longUri = options(1).replace(
      "OPTIONS sip:bob@example.com",
      `OPTIONS sip:${"b".repeat(3000)}@example.com`,
    );
    refusedWith(longUri, "SIP_ERR_URI_TOO_LONG", 414);
    const params = options(1).replace(
      "To: <sip:bob@example.com>",
      `To: <sip:bob@example.com>${";p".repeat(80)}`,
    );
    refusedWith(params, "SIP_ERR_TOO_MANY_PARAMS", 400);
  });

  test("parseLimits refuses nonsense and names the field", () => {
    assert.throws(() => parseLimits({ maxHeaders: 0 }), /limits\.maxHeaders/);
    assert.throws(() => parseLimits({ maxMessageBytes: 1.5 }), /limits\.maxMessageBytes/);
  });
});

describe("start lines and header lines", () => {
  test("malformed start lines and header lines get 400; broken responses are dropped", () => {
    const cases: [string, SipParseError["code"], number | undefined][] = [
      [
        options(1).replace("OPTIONS sip:bob@example.com SIP/2.0", "OPTIONS sip:bob@example.com"),
        "SIP_ERR_START_LINE",
        400,
      ],
      [options(1).replace("OPTIONS sip:", "OPT IONS sip:"), "SIP_ERR_START_LINE", 400],
      [options(1).replace("OPTIONS", "OPT<IONS"), "SIP_ERR_START_LINE", 400],
      [options(1).replace("SIP/2.0\r\n", "SIP/2.0x\r\n"), "SIP_ERR_START_LINE", 400],
      [options(1).replace("SIP/2.0\r\n", "SIP/3.0\r\n"), "SIP_ERR_VERSION", 505],
      [options(1).replace("CSeq: 1 OPTIONS", "CSeq 1 OPTIONS"), "SIP_ERR_HEADER_LINE", 400],
      [options(1).replace("CSeq: 1 OPTIONS", "C Seq: 1 OPTIONS"), "SIP_ERR_HEADER_LINE", 400],
      [options(1).replace("CSeq: 1 OPTIONS", "CSeq: 1 OPTIONS\nX: y"), "SIP_ERR_HEADER_LINE", 400],
      [options(1).replace("CSeq: 1 OPTIONS", "CSeq: 1 OP\rTIONS"), "SIP_ERR_HEADER_LINE", 400],
      [options(1).replace("\r\nVia:", "\r\n Via:"), "SIP_ERR_HEADER_LINE", 400],
      ["OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h", "SIP_ERR_NO_HEADER_END", 400],
      ["SIP/2.0 20 OK\r\n\r\n", "SIP_ERR_STATUS_CODE", undefined],
      ["SIP/2.0 2000 OK\r\n\r\n", "SIP_ERR_STATUS_CODE", undefined],
      ["SIP/2.0 099 Low\r\n\r\n", "SIP_ERR_STATUS_CODE", undefined],
      ["SIP/3.0 200 OK\r\n\r\n", "SIP_ERR_VERSION", undefined],
      ["SIP/2.0 200 OK\r\nVia: broken\r\n\r\n", "SIP_ERR_MISSING_HEADER", undefined],
    ];
    for (const [text, code, status] of cases) {
      assert.throws(
        () => parseDatagram(Buffer.from(text)),
        (e: unknown) => e instanceof SipParseError && e.code === code && e.status === status,
        `${JSON.stringify(text.slice(0, 60))} → ${code}`,
      );
    }
  });

  test("a response without a reason phrase or even its space is accepted", () => {
    const base =
      "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n";
    const m = parseDatagram(Buffer.from("SIP/2.0 180\r\n" + base));
    assert.ok(m?.type === "response" && m.status === 180 && m.reason === "");
  });
});
