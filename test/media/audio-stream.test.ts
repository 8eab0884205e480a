// The RTP/RTCP session of one audio stream, two of them on loopback driven by a fake clock:
// the RTP header fields on the wire, media both ways through the jitter buffer, RFC 4733 DTMF,
// RTCP SR/RR with report blocks and BYE on stop, symmetric RTP latching, the
// allowedDestinations list, and no handle left open after stop().
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { describe, test } from "node:test";
import {
  AudioStream,
  SequenceSource,
  SilenceSource,
  ToneSource,
  readRtcpCompound,
  readRtpPacket,
  scanForTone,
  type AudioSink,
  type AudioStreamOptions,
  type RtpPacket,
} from "../../src/media/index.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { openHandles } from "../helpers/handles.js";

const LOOPBACK = ["127.0.0.0/8", "::1/128"];

class CollectingSink implements AudioSink {
  readonly frames: Int16Array[] = [];
  write(samples: Int16Array): void {
    this.frames.push(samples);
  }
  samples(): Int16Array {
    const out = new Int16Array(this.frames.reduce((n, f) => n + f.length, 0));
    let at = 0;
    for (const f of this.frames) {
      out.set(f, at);
      at += f.length;
    }
    return out;
  }
}

/** Advances the fake clock in 20-ms steps, letting loopback datagrams land between steps. */
async function play(clock: FakeClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 20) {
    clock.tick(20);
    await new Promise((r) => setTimeout(r, 1));
  }
  await new Promise((r) => setTimeout(r, 20));
}

async function rawSocket(): Promise<{ socket: Socket; port: number; datagrams: Buffer[] }> {
  const socket = createSocket("udp4");
  const datagrams: Buffer[] = [];
  socket.on("message", (d) => datagrams.push(d));
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", r));
  return { socket, port: socket.address().port, datagrams };
}

function stream(clock: FakeClock, options: Partial<AudioStreamOptions> = {}): AudioStream {
  return new AudioStream({
    localAddress: "127.0.0.1",
    payloadType: 0,
    telephoneEventPt: 101,
    allowedDestinations: LOOPBACK,
    clock,
    // NTP time for SRs moves with the fake clock, as the RTT arithmetic needs.
    wallClock: () => 1_750_000_000_000 + clock.now(),
    ...options,
  });
}

describe("audio stream", () => {
  test("RTP on the wire: even port, PT, seq +1, timestamp +160, one SSRC, marker first", async () => {
    const clock = new FakeClock();
    const peer = await rawSocket();
    const a = stream(clock, {
      payloadType: 8,
      remote: { address: "127.0.0.1", port: peer.port },
      source: new ToneSource({ frequency: 1000 }),
    });
    try {
      const ports = await a.start();
      assert.equal(ports.rtpPort % 2, 0);
      assert.equal(ports.rtcpPort, ports.rtpPort + 1);
      await play(clock, 200);
      const packets = peer.datagrams
        .map((d) => readRtpPacket(d))
        .filter((p): p is RtpPacket => typeof p === "object");
      assert.equal(packets.length, 10);
      packets.forEach((p, i) => {
        assert.equal(p.payloadType, 8);
        assert.equal(p.ssrc, a.ssrc);
        assert.equal(p.payload.length, 160);
        assert.equal(p.marker, i === 0);
        assert.equal(p.sequence, (packets[0]!.sequence + i) & 0xffff);
        assert.equal(p.timestamp, (packets[0]!.timestamp + i * 160) >>> 0);
      });
      assert.equal(a.stats.sent, 10);
      assert.equal(a.stats.sentOctets, 1600);
    } finally {
      await a.stop();
      peer.socket.close();
    }
  });

  test("two streams: audio both ways through the jitter buffer, stats agree, handles closed", async () => {
    const before = await openHandles();
    const clock = new FakeClock();
    const heardByB = new CollectingSink();
    const heardByA = new CollectingSink();
    const a = stream(clock, {
      source: new SequenceSource([
        new SilenceSource({ durationMs: 400 }),
        new ToneSource({ frequency: 1000 }),
      ]),
      sink: heardByA,
    });
    const b = stream(clock, { source: new ToneSource({ frequency: 440 }), sink: heardByB });
    const pa = await a.start();
    const pb = await b.start();
    a.setRemote({ address: "127.0.0.1", port: pb.rtpPort });
    b.setRemote({ address: "127.0.0.1", port: pa.rtpPort });
    await play(clock, 2000);
    const sa = a.stats;
    const sb = b.stats;
    assert.equal(sb.received, sa.sent);
    assert.equal(sb.lost, 0);
    assert.equal(sa.received, sb.sent);
    assert.equal(sb.remoteSsrc, a.ssrc);
    const scan = scanForTone(heardByB.samples(), { frequency: 1000 });
    assert.ok(scan.toneBlocks > 70, `${scan.toneBlocks} tone blocks`);
    assert.ok(Math.abs(scan.firstToneSample - 400 * 8) <= 160, `tone at ${scan.firstToneSample}`);
    assert.equal(scan.maxLevelBeforeDbfs, -Infinity);
    assert.ok(scanForTone(heardByA.samples(), { frequency: 440 }).toneBlocks > 90);
    const summary = b.summary();
    assert.equal(summary.lost, 0);
    assert.ok(summary.mos > 4.3, `MOS ${summary.mos}`);
    await Promise.all([a.stop(), b.stop()]);
    await a.stop();
    assert.deepEqual(await openHandles(), before);
    assert.equal(clock.pending, 0);
  });

  test("DTMF sent as RFC 4733 events is reported once per key", async () => {
    const clock = new FakeClock();
    const a = stream(clock, { source: new ToneSource({ frequency: 1000 }) });
    const b = stream(clock);
    const keys: string[] = [];
    b.on("dtmf", (digit) => keys.push(digit.key ?? "?"));
    try {
      const pa = await a.start();
      const pb = await b.start();
      a.setRemote({ address: "127.0.0.1", port: pb.rtpPort });
      b.setRemote({ address: "127.0.0.1", port: pa.rtpPort });
      a.sendDtmf("15#");
      await play(clock, 1000);
      assert.deepEqual(keys, ["1", "5", "#"]);
      assert.equal(a.stats.dtmfSent, 3);
      assert.equal(b.stats.dtmfReceived, 3);
      assert.equal(b.stats.lost, 0, "events share the audio's sequence numbers");
      assert.equal(b.stats.concealed, 0, "the events' places are kept with silence, not concealed");
      assert.throws(() => a.sendDtmf("x"), /not a DTMF key/);
      assert.throws(
        () => stream(clock, { telephoneEventPt: undefined }).sendDtmf("1"),
        /telephone-event/,
      );
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test("RTCP: SR and RR with report blocks every ~5 s, RTT measured, BYE on stop", async () => {
    const clock = new FakeClock();
    const a = stream(clock, { source: new ToneSource({ frequency: 1000 }) });
    const b = stream(clock, { send: false });
    const byes: (string | undefined)[] = [];
    b.on("bye", (reason) => byes.push(reason));
    try {
      const pa = await a.start();
      const pb = await b.start();
      a.setRemote({ address: "127.0.0.1", port: pb.rtpPort });
      b.setRemote({ address: "127.0.0.1", port: pa.rtpPort });
      await play(clock, 16_000);
      assert.ok(a.stats.rtcpSent >= 2 && a.stats.rtcpSent <= 6, `A sent ${a.stats.rtcpSent}`);
      assert.ok(b.stats.rtcpReceived >= 2);
      assert.ok(a.stats.rtcpReceived >= 2, "B's receiver reports reach A");
      const report = a.stats.remoteReport;
      assert.ok(report !== undefined);
      assert.equal(report.fractionLost, 0);
      assert.equal(report.cumulativeLost, 0);
      assert.ok(
        report.rttMs !== undefined && report.rttMs >= 0 && report.rttMs < 1000,
        `RTT ${report.rttMs}`,
      );
      assert.equal(b.stats.sent, 0);
      await a.stop();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(byes.length, 1);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test("RTCP reports sent by a stream parse as SR + SDES CNAME (+ BYE at the end)", async () => {
    const clock = new FakeClock();
    const peer = await rawSocket();
    const rtcpPeer = await rawSocket();
    const a = stream(clock, {
      source: new ToneSource({ frequency: 1000 }),
      remote: { address: "127.0.0.1", port: peer.port, rtcpPort: rtcpPeer.port },
      cname: "alice@test",
    });
    try {
      await a.start();
      await play(clock, 8000);
      await a.stop();
      await new Promise((r) => setTimeout(r, 30));
      assert.ok(rtcpPeer.datagrams.length >= 2);
      const all = rtcpPeer.datagrams.map((d) => readRtcpCompound(d));
      for (const read of all) {
        assert.ok(read.ok);
        assert.equal(read.packets[0]?.type, "sr");
        assert.deepEqual(read.packets[1], {
          type: "sdes",
          chunks: [{ ssrc: a.ssrc, cname: "alice@test" }],
        });
      }
      const last = all.at(-1)!;
      assert.ok(last.ok && last.packets.at(-1)?.type === "bye");
      const sr = all[0]!.ok ? all[0]!.packets[0] : undefined;
      assert.ok(sr?.type === "sr" && sr.packetCount > 0 && sr.octetCount === sr.packetCount * 160);
    } finally {
      await a.stop();
      peer.socket.close();
      rtcpPeer.socket.close();
    }
  });

  test("symmetric RTP: a stream told a wrong address latches onto where the peer's RTP comes from", async () => {
    const clock = new FakeClock();
    const a = stream(clock, { source: new ToneSource({ frequency: 1000 }) });
    const b = stream(clock, {
      symmetric: true,
      source: new ToneSource({ frequency: 440 }),
      sink: new CollectingSink(),
    });
    try {
      const pa = await a.start();
      const pb = await b.start();
      a.setRemote({ address: "127.0.0.1", port: pb.rtpPort });
      // B believes A is behind a NAT at a port nobody listens on.
      b.setRemote({ address: "127.0.0.1", port: 9 });
      const latched: { address: string; port: number }[] = [];
      b.on("latched", (to) => latched.push(to));
      await play(clock, 600);
      assert.deepEqual(latched, [{ address: "127.0.0.1", port: pa.rtpPort }]);
      assert.deepEqual(b.remote, { address: "127.0.0.1", port: pa.rtpPort });
      assert.ok(a.stats.received > 20, `A heard ${a.stats.received} packets from B`);
      // A later SDP does not move a latched stream.
      b.setRemote({ address: "127.0.0.1", port: 11 });
      assert.equal(b.remote?.port, pa.rtpPort);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test("nothing is sent where allowedDestinations does not reach", async () => {
    const clock = new FakeClock();
    const a = stream(clock, {
      allowedDestinations: ["10.0.0.0/8"],
      remote: { address: "127.0.0.1", port: 9 },
    });
    try {
      await a.start();
      await play(clock, 200);
      assert.equal(a.stats.sent, 0);
      assert.ok(a.stats.refused >= 10);
    } finally {
      await a.stop();
    }
    assert.throws(() => stream(clock, { allowedDestinations: ["nonsense"] }), /not a CIDR block/);
  });

  test("bad options are refused by name; damaged datagrams are counted, not fatal", async () => {
    const clock = new FakeClock();
    assert.throws(() => stream(clock, { payloadType: 18 }), /payload type 18 is not G.711/);
    assert.throws(() => stream(clock, { localPort: 5001 }), /odd/);
    assert.throws(() => stream(clock, { localAddress: "localhost" }), /not an IP address/);
    const a = stream(clock);
    const peer = await rawSocket();
    try {
      const { rtpPort, rtcpPort } = await a.start();
      await assert.rejects(a.start(), /already started/);
      const send = (bytes: Buffer, port: number): Promise<void> =>
        new Promise((r) => peer.socket.send(bytes, port, "127.0.0.1", () => r()));
      await send(Buffer.from([1, 2, 3]), rtpPort);
      await send(Buffer.from([0x80, 200, 0, 1, 0]), rtpPort);
      await send(Buffer.from("garbage"), rtcpPort);
      await send(Buffer.from([0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 5]), rtpPort);
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(a.stats.malformed, 1);
      assert.equal(a.stats.rtcpMalformed, 2);
      assert.equal(a.stats.otherPayloads, 1);
    } finally {
      await a.stop();
      peer.socket.close();
    }
  });

  test("hold (RFC 3264 §8.4): a stream set to receive only sends nothing until resumed", async () => {
    const clock = new FakeClock();
    const a = stream(clock, { source: new ToneSource({ frequency: 1000 }) });
    const b = stream(clock);
    try {
      const pa = await a.start();
      const pb = await b.start();
      a.setRemote({ address: "127.0.0.1", port: pb.rtpPort });
      b.setRemote({ address: "127.0.0.1", port: pa.rtpPort });
      await play(clock, 200);
      a.setDirection({ send: false, receive: true });
      const held = b.stats.received;
      await play(clock, 400);
      assert.equal(b.stats.received, held);
      a.setDirection({ send: true, receive: true });
      await play(clock, 200);
      assert.ok(b.stats.received >= held + 9);
      assert.equal(b.stats.lost, 0, "the sequence runs on: nothing was sent on hold");
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    // Stopping a stream that never started is harmless.
    await stream(clock).stop();
  });

  test("rtcp-mux: one port for RTP and RTCP, on IPv6 too", async () => {
    const clock = new FakeClock();
    const a = stream(clock, {
      localAddress: "::1",
      rtcpMux: true,
      source: new ToneSource({ frequency: 1000 }),
    });
    const b = stream(clock, { localAddress: "::1", rtcpMux: true });
    try {
      const pa = await a.start();
      const pb = await b.start();
      assert.equal(pa.rtcpPort, pa.rtpPort);
      a.setRemote({ address: "::1", port: pb.rtpPort });
      b.setRemote({ address: "::1", port: pa.rtpPort });
      await play(clock, 6000);
      assert.ok(b.stats.received >= 290);
      assert.ok(b.stats.rtcpReceived >= 1);
      assert.ok(a.stats.rtcpReceived >= 1);
      assert.equal(b.stats.malformed, 0);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
