// The transport layer on real sockets (loopback only): UDP, TCP, TLS, WS, WSS, IPv4 and
// IPv6, RFC 3581 received/rport, RFC 3261 §18.2.2 response routing, RFC 5626 keep-alives,
// allowedDestinations, limits on connections, idle timeouts, and stop() leaving nothing open.
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { once } from "node:events";
import { connect as netConnect } from "node:net";
import { after, before, describe, test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { WebSocket } from "ws";
import {
  SipRequest,
  SipResponse,
  TransportError,
  TransportLayer,
  parseDatagram,
  type InboundMessage,
  type Protocol,
  type TransportOptionsInput,
} from "../../../src/sip/index.js";
import { FakeClock } from "../../helpers/fake-clock.js";
import { openHandles } from "../../helpers/handles.js";
import { rawRequest, request, respond } from "../../helpers/sip-messages.js";
import { makeTestCertificate, type TestCertificate } from "../../helpers/tls-cert.js";

const LOOPBACK = ["127.0.0.0/8", "::1/128"];

function nextMessage(transport: TransportLayer): Promise<InboundMessage> {
  return once(transport, "message").then(([m]) => m as InboundMessage);
}

/**
 * A UDP transport layer and a peer socket on loopback: the peer sends a request whose top Via
 * is `via`, and `body` runs once it has arrived; both are closed after.
 */
async function afterUdpRequest(
  via: string,
  body: (inbound: InboundMessage, peer: Socket, server: TransportLayer) => Promise<void>,
): Promise<void> {
  const server = await started({ listen: [listener("udp")] });
  const peer = createSocket("udp4");
  try {
    await new Promise<void>((r) => peer.bind(0, "127.0.0.1", () => r()));
    const arrived = nextMessage(server);
    peer.send(rawRequest(via), server.boundListeners[0]!.port, "127.0.0.1");
    await body(await arrived, peer, server);
  } finally {
    peer.close();
    await server.stop();
  }
}

async function started(options: TransportOptionsInput, clock?: FakeClock): Promise<TransportLayer> {
  const t = new TransportLayer(
    { allowedDestinations: LOOPBACK, ...options },
    clock === undefined ? {} : { clock },
  );
  await t.start();
  return t;
}

let cert: TestCertificate;
before(() => {
  cert = makeTestCertificate();
});
after(() => cert.dispose());

function listener(protocol: Protocol, address = "127.0.0.1") {
  const tls = protocol === "tls" || protocol === "wss";
  return {
    protocol,
    address,
    port: 0,
    ...(tls ? { tls: { certFile: cert.certFile, keyFile: cert.keyFile } } : {}),
  };
}

describe("a request and its response over each transport", () => {
  const cases: [Protocol, string][] = [
    ["udp", "127.0.0.1"],
    ["tcp", "127.0.0.1"],
    ["tls", "127.0.0.1"],
    ["ws", "127.0.0.1"],
    ["wss", "127.0.0.1"],
    ["udp", "::1"],
    ["tcp", "::1"],
  ];
  for (const [protocol, address] of cases) {
    test(`${protocol} over ${address.includes(":") ? "IPv6" : "IPv4"}`, async () => {
      const server = await started({ listen: [listener(protocol, address)] });
      const client = await started({
        listen: [listener(protocol, address)],
        tlsClient: { caFile: cert.certFile },
      });
      try {
        const [bound] = server.boundListeners;
        const arrived = nextMessage(server);
        const sent = await client.send(
          request(),
          { protocol, address, port: bound!.port },
          { viaBranch: "z9hG4bKtest1" },
        );
        const inbound = await arrived;
        assert.ok(inbound.message instanceof SipRequest);
        assert.equal(inbound.flow.protocol, protocol);
        assert.equal(inbound.flow.reliable, protocol !== "udp");
        const via = inbound.message.topVia!;
        assert.equal(via.transport, protocol.toUpperCase());
        assert.equal(via.branch, "z9hG4bKtest1");
        // RFC 3581: the empty rport is filled with the source port, received added.
        assert.equal(via.rport, inbound.flow.remote.port);
        assert.equal(via.received, address);

        const answered = nextMessage(client);
        await server.sendResponse(respond(inbound.message, 200), inbound.flow);
        const response = await answered;
        assert.ok(response.message instanceof SipResponse);
        assert.equal(response.message.status, 200);
        assert.equal(response.message.callId, inbound.message.callId);
        if (protocol !== "udp") {
          assert.equal(response.flow.id, sent.flow.id, "the response came back on the connection");
        }
      } finally {
        await client.stop();
        await server.stop();
      }
    });
  }
});

describe("connections", () => {
  test("a second request to the same peer reuses the connection", async () => {
    const server = await started({ listen: [listener("tcp")] });
    const client = await started({ listen: [listener("tcp")] });
    try {
      const port = server.boundListeners[0]!.port;
      const target = { protocol: "tcp" as const, address: "127.0.0.1", port };
      const first = await client.send(request(), target, { viaBranch: "z9hG4bKa" });
      const second = await client.send(request(), target, { viaBranch: "z9hG4bKb" });
      assert.equal(first.flow.id, second.flow.id);
      assert.equal(server.flows.length, 1);
      // Our Via names the listener, not the ephemeral port of the connection.
      assert.ok(
        first.bytes.toString().includes(`SIP/2.0/TCP 127.0.0.1:${client.boundListeners[0]!.port};`),
      );
    } finally {
      await client.stop();
      await server.stop();
    }
  });

  test("a request can go back over a flow the peer opened (RFC 5626)", async () => {
    const server = await started({ listen: [listener("tcp")] });
    const client = await started({ listen: [listener("tcp")] });
    try {
      const port = server.boundListeners[0]!.port;
      const arrived = nextMessage(server);
      await client.send(
        request(),
        { protocol: "tcp", address: "127.0.0.1", port },
        { viaBranch: "z9hG4bKc" },
      );
      const { flow } = await arrived;
      const back = nextMessage(client);
      await server.send(
        request("MESSAGE"),
        { protocol: "tcp", address: "127.0.0.1", port: 1, flowId: flow.id },
        { viaBranch: "z9hG4bKd" },
      );
      const got = await back;
      assert.equal((got.message as SipRequest).method, "MESSAGE");
    } finally {
      await client.stop();
      await server.stop();
    }
  });

  test("connections beyond the per-source cap are refused", async () => {
    const server = await started({ listen: [listener("tcp")], maxConnectionsPerSource: 2 });
    const port = server.boundListeners[0]!.port;
    const sockets = [1, 2, 3].map(() => netConnect({ host: "127.0.0.1", port }));
    try {
      await Promise.all(sockets.map((s) => once(s, "connect")));
      await once(sockets[2]!, "close");
      assert.equal(server.stats.connectionsRefused, 1);
      assert.equal(server.flows.length, 2);
    } finally {
      for (const s of sockets) s.destroy();
      await server.stop();
    }
  });

  test("an idle connection is closed after idleTimeoutMs, on the injected clock", async () => {
    const clock = new FakeClock();
    const server = await started({ listen: [listener("tcp")], idleTimeoutMs: 60_000 }, clock);
    const socket = netConnect({ host: "127.0.0.1", port: server.boundListeners[0]!.port });
    try {
      await once(socket, "connect");
      while (server.flows.length === 0) await new Promise((r) => setImmediate(r));
      clock.tick(30_000);
      assert.equal(server.flows.length, 1, "not idle yet");
      const closed = once(socket, "close");
      clock.tick(45_000);
      await closed;
    } finally {
      socket.destroy();
      await server.stop();
    }
  });

  test("a message trickled a byte at a time is cut off after messageTimeoutMs; keep-alives are not", async () => {
    const clock = new FakeClock();
    const server = await started(
      { listen: [listener("tcp")], idleTimeoutMs: 600_000, messageTimeoutMs: 10_000 },
      clock,
    );
    const port = server.boundListeners[0]!.port;
    const slow = netConnect({ host: "127.0.0.1", port });
    const pinging = netConnect({ host: "127.0.0.1", port });
    const flowCount = async (n: number) => {
      while (server.flows.length !== n) await new Promise((r) => setImmediate(r));
    };
    try {
      await Promise.all([once(slow, "connect"), once(pinging, "connect")]);
      await flowCount(2);
      const text = rawRequest("SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-slow1");
      let sent = 0;
      const slowClosed = once(slow, "close");
      // A byte every 2 s keeps the idle timer happy, but the message never completes in time.
      for (let t = 0; t < 4; t++) {
        slow.write(text.slice(sent, sent + 1));
        sent++;
        // A lone CRLF (half a keep-alive) is not part of a message.
        pinging.write("\r\n");
        await new Promise((r) => setTimeout(r, 10));
        clock.tick(2_000);
      }
      assert.equal(server.flows.length, 2, "10 s have not passed");
      slow.write(text.slice(sent, sent + 1));
      pinging.write("\r\n");
      await new Promise((r) => setTimeout(r, 10));
      clock.tick(5_000);
      await slowClosed;
      await flowCount(1);
      assert.equal(server.stats.slowMessages, 1);
      // The connection that only sent keep-alives still serves.
      const arrived = nextMessage(server);
      pinging.write(rawRequest("SIP/2.0/TCP 127.0.0.1:5998;branch=z9hG4bK-ok1"));
      assert.equal((await arrived).message.callId !== undefined, true);
    } finally {
      slow.destroy();
      pinging.destroy();
      await server.stop();
    }
  });

  test("a double CRLF ping gets a single CRLF pong (RFC 5626 §4.4.1)", async () => {
    const server = await started({ listen: [listener("tcp")] });
    const socket = netConnect({ host: "127.0.0.1", port: server.boundListeners[0]!.port });
    try {
      await once(socket, "connect");
      socket.write("\r\n\r\n");
      const [data] = (await once(socket, "data")) as [Buffer];
      assert.equal(data.toString(), "\r\n");
    } finally {
      socket.destroy();
      await server.stop();
    }
  });

  test("a WebSocket without the sip subprotocol is refused (RFC 7118 §4.1)", async () => {
    const server = await started({ listen: [listener("ws")] });
    const ws = new WebSocket(`ws://127.0.0.1:${server.boundListeners[0]!.port}/`);
    try {
      const [error] = (await once(ws, "error")) as [Error];
      assert.match(error.message, /Unexpected server response: 401/);
    } finally {
      ws.terminate();
      await server.stop();
    }
  });
});

describe("TLS credentials", () => {
  test("reloadTlsCredentials serves the new certificate to new connections", async () => {
    const other = makeTestCertificate("sipsteer-rotated");
    const { copyFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const certFile = join(cert.dir, "live-cert.pem");
    const keyFile = join(cert.dir, "live-key.pem");
    copyFileSync(cert.certFile, certFile);
    copyFileSync(cert.keyFile, keyFile);
    const server = await started({
      listen: [{ protocol: "tls", address: "127.0.0.1", port: 0, tls: { certFile, keyFile } }],
    });
    const subjectOf = async (): Promise<string> => {
      const socket = tlsConnect({
        host: "127.0.0.1",
        port: server.boundListeners[0]!.port,
        rejectUnauthorized: false,
      });
      await once(socket, "secureConnect");
      const cn = String(socket.getPeerCertificate().subject.CN);
      socket.destroy();
      return cn;
    };
    try {
      assert.equal(await subjectOf(), "sipsteer-test");
      copyFileSync(other.certFile, certFile);
      copyFileSync(other.keyFile, keyFile);
      // What the CLI wires to SIGHUP.
      const onHup = () => void server.reloadTlsCredentials();
      process.once("SIGHUP", onHup);
      process.kill(process.pid, "SIGHUP");
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(await subjectOf(), "sipsteer-rotated");
    } finally {
      await server.stop();
      other.dispose();
    }
  });
});

describe("what peers get wrong", () => {
  test("a datagram that does not parse is answered 400 from the socket it reached", async () => {
    const server = await started({ listen: [listener("udp")] });
    const peer = createSocket("udp4");
    try {
      await new Promise<void>((r) => peer.bind(0, "127.0.0.1", () => r()));
      const port = server.boundListeners[0]!.port;
      const bad = rawRequest("SIP/2.0/UDP 127.0.0.1:9;;branch=z9hG4bKbad");
      peer.send(bad, port, "127.0.0.1");
      const [reply, rinfo] = (await once(peer, "message")) as [Buffer, { port: number }];
      assert.match(reply.toString(), /^SIP\/2\.0 400 Malformed Via header\r\n/);
      assert.equal(rinfo.port, port);
      assert.equal(server.stats.parseErrors, 1);
    } finally {
      peer.close();
      await server.stop();
    }
  });

  test("a stream message without Content-Length gets 400 and the connection closes", async () => {
    const server = await started({ listen: [listener("tcp")] });
    const socket = netConnect({ host: "127.0.0.1", port: server.boundListeners[0]!.port });
    try {
      await once(socket, "connect");
      const chunks: Buffer[] = [];
      socket.on("data", (c: Buffer) => chunks.push(c));
      socket.write(
        rawRequest("SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKx").replace("Content-Length: 0\r\n", ""),
      );
      await once(socket, "close");
      assert.match(
        Buffer.concat(chunks).toString(),
        /^SIP\/2\.0 400 Content-Length is required on a stream\r\n/,
      );
    } finally {
      socket.destroy();
      await server.stop();
    }
  });

  test("responses go to received and rport, not to the private sent-by (RFC 3581 NAT)", async () => {
    // The phone believes it is 10.1.2.3:5060; the packet comes from 127.0.0.1:<peer port>.
    const privateVia = "SIP/2.0/UDP 10.1.2.3:5060;rport;branch=z9hG4bKnat";
    await afterUdpRequest(privateVia, async (inbound, peer, server) => {
      const via = inbound.message.topVia!;
      assert.equal(via.received, "127.0.0.1");
      assert.equal(via.rport, peer.address().port);
      assert.equal(via.host, "10.1.2.3");
      await server.sendResponse(respond(inbound.message as SipRequest, 200), inbound.flow);
      const [reply] = (await once(peer, "message")) as [Buffer];
      const response = parseDatagram(reply)!;
      assert.equal((response as SipResponse).status, 200);
      assert.match(reply.toString(), /;received=127\.0\.0\.1/);
      assert.match(reply.toString(), new RegExp(`;rport=${peer.address().port}`));
    });
  });

  test("received is added when sent-by differs from the source, even without rport", async () => {
    await afterUdpRequest("SIP/2.0/UDP phone.example.com;branch=z9hG4bKname", async (inbound) => {
      const via = inbound.message.topVia!;
      assert.equal(via.received, "127.0.0.1");
      assert.equal(via.rport, undefined);
    });
  });
});

describe("stateless answers", () => {
  // RFC 3261 §8.2.7 / §18.2.2: bytes built by a stateless UAS go where the request's Via says.
  test("sendResponseBytesNow sends prebuilt bytes to received and rport", async () => {
    const via = "SIP/2.0/UDP 10.1.2.3:5060;rport;branch=z9hG4bKbytes";
    await afterUdpRequest(via, async (inbound, peer, server) => {
      const bytes = respond(inbound.message as SipRequest, 200).toBuffer();
      const sent = server.sendResponseBytesNow(bytes, inbound.message.topVia!, inbound.flow);
      assert.equal(sent?.bytes, bytes);
      const [reply] = (await once(peer, "message")) as [Buffer];
      assert.deepEqual(reply, bytes);
    });
  });

  test("a screen drops datagrams unparsed and uncounted; the others arrive", async () => {
    const server = new TransportLayer(
      { allowedDestinations: LOOPBACK, listen: [listener("udp")] },
      { screen: (bytes) => !bytes.subarray(0, 4).equals(Buffer.from("ACK ")) },
    );
    await server.start();
    const peer = createSocket("udp4");
    try {
      await new Promise<void>((r) => peer.bind(0, "127.0.0.1", () => r()));
      const got: string[] = [];
      server.on("message", (m) => got.push((m.message as SipRequest).method));
      const port = server.boundListeners[0]!.port;
      peer.send(rawRequest("SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKs1", "ACK"), port, "127.0.0.1");
      // Not even parsed: this one would be answered 400.
      peer.send("ACK nonsense\r\n\r\n", port, "127.0.0.1");
      const arrived = nextMessage(server);
      peer.send(rawRequest("SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKs2"), port, "127.0.0.1");
      await arrived;
      assert.deepEqual(got, ["OPTIONS"]);
      assert.equal(server.stats.received, 1);
      assert.equal(server.stats.parseErrors, 0);
    } finally {
      peer.close();
      await server.stop();
    }
  });
});

describe("allowedDestinations", () => {
  test("a send outside the list is refused before any packet leaves", async () => {
    const t = await started({ listen: [listener("udp"), listener("tcp")] });
    try {
      for (const protocol of ["udp", "tcp"] as const) {
        await assert.rejects(
          t.send(
            request(),
            { protocol, address: "192.0.2.1", port: 5060 },
            { viaBranch: "z9hG4bKno" },
          ),
          (e: unknown) => e instanceof TransportError && e.code === "DESTINATION_NOT_ALLOWED",
        );
      }
      assert.equal(t.stats.refusedDestinations, 2);
      assert.equal(t.stats.sent, 0);
    } finally {
      await t.stop();
    }
  });

  test("a response whose Via points outside the list is not sent", async () => {
    const t = await started({ listen: [listener("udp")] });
    const peer = createSocket("udp4");
    try {
      await new Promise<void>((r) => peer.bind(0, "127.0.0.1", () => r()));
      const arrived = nextMessage(t);
      peer.send(
        rawRequest("SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKm;maddr=192.0.2.7"),
        t.boundListeners[0]!.port,
        "127.0.0.1",
      );
      const inbound = await arrived;
      await assert.rejects(
        t.sendResponse(respond(inbound.message as SipRequest, 200), inbound.flow),
        (e: unknown) => e instanceof TransportError && e.code === "DESTINATION_NOT_ALLOWED",
      );
    } finally {
      peer.close();
      await t.stop();
    }
  });

  test("bad options stop the start naming the field", () => {
    assert.throws(
      () => new TransportLayer({ allowedDestinations: ["not-a-cidr"] }),
      /allowedDestinations/,
    );
    assert.throws(
      () => new TransportLayer({ listen: [{ protocol: "tls", address: "127.0.0.1", port: 0 }] }),
      /transport\.listen\.0\.tls/,
    );
    assert.throws(() => new TransportLayer({ idleTimeoutMs: -1 }), /transport\.idleTimeoutMs/);
  });
});

describe("lifecycle", () => {
  test("stop() leaves no socket, server or timer behind", async () => {
    const before = await openHandles();
    const server = await started({
      listen: [listener("udp"), listener("tcp"), listener("tls"), listener("ws"), listener("wss")],
    });
    const client = await started({
      listen: [listener("udp")],
      tlsClient: { caFile: cert.certFile },
    });
    for (const [i, l] of server.boundListeners.entries()) {
      const arrived = nextMessage(server);
      await client.send(
        request(),
        { protocol: l.protocol, address: "127.0.0.1", port: l.port },
        { viaBranch: `z9hG4bKl${i}` },
      );
      await arrived;
    }
    assert.ok(Object.keys(await openHandles()).length > 0, "the check sees open sockets");
    await client.stop();
    await server.stop();
    assert.deepEqual(await openHandles(), before);
  });

  test("send after stop is refused", async () => {
    const t = await started({ listen: [listener("udp")] });
    await t.stop();
    await t.stop();
    await assert.rejects(
      t.send(request(), { protocol: "udp", address: "127.0.0.1", port: 9 }),
      TransportError,
    );
  });
});
