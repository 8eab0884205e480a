import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { after, before, describe, it } from "node:test";
import { NgClient, NgError, RtpengineProcess } from "../../../src/media/rtpengine/index.js";
import { FakeClock } from "../../helpers/fake-clock.js";
import { requireRtpengine, startRtpengine } from "../../helpers/rtpengine.js";

function plainSdp(address: string, port: number): string {
  return [
    "v=0",
    `o=- 1 1 IN IP4 ${address}`,
    "s=-",
    `c=IN IP4 ${address}`,
    "t=0 0",
    `m=audio ${port} RTP/AVP 0 101`,
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=sendrecv",
    "",
  ].join("\r\n");
}

/** The c= address and audio port of an SDP. */
function mediaOf(sdp: string): { address: string; port: number } {
  const c = /^c=IN IP[46] (\S+)/m.exec(sdp);
  const m = /^m=audio (\d+)/m.exec(sdp);
  assert.ok(c !== null && m !== null, sdp);
  return { address: c[1]!, port: Number(m[1]) };
}

describe("NgClient against rtpengine", () => {
  let relay: RtpengineProcess | undefined;
  let client: NgClient;

  before(async (t) => {
    if (!requireRtpengine(t as never)) return;
    relay = await startRtpengine({ maxSessions: 3 });
    client = new NgClient({ address: "127.0.0.1", port: relay.options.ngPort });
    await client.start();
  });
  after(async () => {
    await client?.stop();
    await relay?.stop();
  });

  it("pings, and reads statistics with no sessions", async (t) => {
    if (relay === undefined) return t.skip("no rtpengine");
    await client.ping();
    const stats = await client.statistics();
    assert.equal(stats.sessions, 0);
    assert.equal(stats.ports.total, 200);
    assert.ok(stats.uptimeS >= 0);
  });

  it("relays a call: offer and answer rewritten to its ports, then query, list and delete", async (t) => {
    if (relay === undefined) return t.skip("no rtpengine");
    const callId = `ng-${Date.now()}`;
    const offer = await client.offer({
      callId,
      fromTag: "a1",
      sdp: plainSdp("127.0.0.99", 40000),
      replace: ["origin", "session-connection"],
      ice: "remove",
      flags: ["trust-address"],
    });
    const o = mediaOf(offer.sdp);
    assert.equal(o.address, "127.0.0.1");
    assert.ok(o.port >= relay.options.portMin && o.port <= relay.options.portMax, offer.sdp);
    const answer = await client.answer({
      callId,
      fromTag: "a1",
      toTag: "b1",
      sdp: plainSdp("127.0.0.98", 40002),
      replace: ["origin", "session-connection"],
    });
    const a = mediaOf(answer.sdp);
    assert.equal(a.address, "127.0.0.1");
    assert.notEqual(a.port, o.port);

    const query = await client.query({ callId });
    assert.deepEqual([...query.tags].sort(), ["a1", "b1"]);
    assert.equal(query.rtp.packets, 0);
    assert.ok((await client.list()).includes(callId));
    assert.equal((await client.statistics()).sessions, 1);

    await client.delete({ callId, fromTag: "a1" });
    assert.ok(!(await client.list()).includes(callId));
  });

  it("reports rtpengine's errors as NG_ERROR with its reason", async (t) => {
    if (relay === undefined) return t.skip("no rtpengine");
    await assert.rejects(
      client.answer({
        callId: "never-offered",
        fromTag: "x",
        toTag: "y",
        sdp: plainSdp("127.0.0.1", 4000),
      }),
      (e: unknown) =>
        e instanceof NgError && e.code === "NG_ERROR" && /Unknown call-id/i.test(e.message),
    );
  });

  it("reports rtpengine's session limit as NG_LOAD_LIMIT", async (t) => {
    if (relay === undefined) return t.skip("no rtpengine");
    const ids = ["lim-1", "lim-2", "lim-3"];
    for (const [i, callId] of ids.entries())
      await client.offer({ callId, fromTag: "a", sdp: plainSdp("127.0.0.1", 41000 + 2 * i) });
    await assert.rejects(
      client.offer({ callId: "lim-4", fromTag: "a", sdp: plainSdp("127.0.0.1", 41010) }),
      (e: unknown) => e instanceof NgError && e.code === "NG_LOAD_LIMIT",
    );
    for (const callId of ids) await client.delete({ callId });
  });
});

describe("NgClient retransmission and failures", () => {
  /** A scripted ng peer on loopback: answers a ping only from the n-th datagram on. */
  async function peer(
    answerFrom: number,
    reply = (cookie: string) => `${cookie} d6:result4:ponge`,
  ) {
    const socket = createSocket("udp4");
    const seen: string[] = [];
    socket.on("message", (msg, rinfo) => {
      const cookie = msg.toString("latin1", 0, msg.indexOf(0x20));
      seen.push(cookie);
      if (seen.length >= answerFrom) socket.send(reply(cookie), rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => socket.bind(0, "127.0.0.1", r));
    return { socket, seen, port: socket.address().port };
  }

  it("sends a lost request again with the same cookie on its timer", async () => {
    const clock = new FakeClock();
    const p = await peer(2);
    const client = new NgClient({ address: "127.0.0.1", port: p.port, clock, timeoutMs: 500 });
    await client.start();
    try {
      const ping = client.ping();
      await until(() => p.seen.length === 1);
      clock.tick(500);
      await ping;
      assert.equal(p.seen.length, 2);
      assert.equal(p.seen[0], p.seen[1]);
      assert.equal(client.pending, 0);
    } finally {
      await client.stop();
      p.socket.close();
    }
  });

  it("fails with NG_TIMEOUT after its attempts, and NG_CLOSED when stopped", async () => {
    const clock = new FakeClock();
    const p = await peer(Infinity);
    const client = new NgClient({ address: "127.0.0.1", port: p.port, clock, attempts: 2 });
    await client.start();
    try {
      const ping = client.ping();
      await until(() => p.seen.length === 1);
      clock.tick(500);
      await until(() => p.seen.length === 2);
      clock.tick(500);
      await assert.rejects(ping, (e: unknown) => e instanceof NgError && e.code === "NG_TIMEOUT");
      const pending = client.statistics();
      await client.stop();
      await assert.rejects(pending, (e: unknown) => e instanceof NgError && e.code === "NG_CLOSED");
      await assert.rejects(
        client.ping(),
        (e: unknown) => e instanceof NgError && e.code === "NG_CLOSED",
      );
      assert.equal(clock.pending, 0);
    } finally {
      p.socket.close();
    }
  });

  it("refuses a reply that is not bencoding, and ignores one for another cookie", async () => {
    const p = await peer(1, (cookie) => `${cookie} d6:result`);
    const client = new NgClient({ address: "127.0.0.1", port: p.port });
    await client.start();
    try {
      await assert.rejects(
        client.ping(),
        (e: unknown) => e instanceof NgError && e.code === "NG_BAD_REPLY",
      );
    } finally {
      await client.stop();
      p.socket.close();
    }
  });

  it("refuses an address that is not an IP literal", () => {
    assert.throws(() => new NgClient({ address: "relay.example", port: 2223 }), /not an IP/);
  });
});

describe("RtpengineProcess", () => {
  it("names the Debian package when the binary is missing", async () => {
    const relay = new RtpengineProcess({
      binary: "/nonexistent/rtpengine",
      ngAddress: "127.0.0.1",
      ngPort: 2223,
      interfaces: ["127.0.0.1"],
      portMin: 61000,
      portMax: 61010,
    });
    await assert.rejects(relay.start(), /rtpengine-daemon/);
    assert.equal(relay.running, false);
  });

  it("refuses bad options naming them", () => {
    const base = {
      ngAddress: "127.0.0.1",
      ngPort: 1,
      interfaces: ["127.0.0.1"],
      portMin: 10,
      portMax: 20,
    };
    assert.throws(() => new RtpengineProcess({ ...base, interfaces: [] }), /interfaces/);
    assert.throws(() => new RtpengineProcess({ ...base, interfaces: ["lo"] }), /interfaces/);
    assert.throws(() => new RtpengineProcess({ ...base, portMax: 5 }), /ports/);
  });
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(check(), "condition not reached");
}
