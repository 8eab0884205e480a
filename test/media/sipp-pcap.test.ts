// SIPp's bundled captures (Debian `sip-tester`) as real-world RTP: g711a.pcap's PCMA stream
// replayed into an AudioStream is counted packet for packet and plays as sound, and the
// dtmf_2833 captures' RFC 4733 events read as their digits, once each.
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { existsSync, readFileSync } from "node:fs";
import { describe, test, type TestContext } from "node:test";
import {
  AudioStream,
  DtmfReceiver,
  levelDbfs,
  readRtpPacket,
  type AudioSink,
  type RtpPacket,
} from "../../src/media/index.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { readPcapUdp } from "../helpers/pcap.js";

const PCAP_DIR = "/usr/share/sip-tester";

function capture(t: TestContext, name: string): Buffer | undefined {
  const path = `${PCAP_DIR}/${name}`;
  if (existsSync(path)) return readFileSync(path);
  const message = `${path} is missing: apt-get install sip-tester`;
  if (process.env.CI === "true") throw new Error(message);
  t.skip(message);
  return undefined;
}

function rtpOf(file: Buffer): RtpPacket[] {
  return readPcapUdp(file)
    .map((d) => readRtpPacket(d.payload))
    .filter((p): p is RtpPacket => typeof p === "object");
}

describe("SIPp's bundled RTP captures", () => {
  test("g711a.pcap is one PCMA stream of 30-ms packets", (t) => {
    const file = capture(t, "g711a.pcap");
    if (file === undefined) return;
    const packets = rtpOf(file);
    assert.ok(packets.length > 100, `${packets.length} packets`);
    assert.ok(packets.every((p) => p.payloadType === 8 && p.payload.length === 240));
    assert.equal(new Set(packets.map((p) => p.ssrc)).size, 1);
    packets.forEach((p, i) => {
      if (i > 0) assert.equal(p.sequence, (packets[i - 1]!.sequence + 1) & 0xffff);
    });
  });

  test("g711a.pcap replayed into an AudioStream: every packet counted, none lost, sound heard", async (t) => {
    const file = capture(t, "g711a.pcap");
    if (file === undefined) return;
    const packets = readPcapUdp(file).map((d) => d.payload);
    const clock = new FakeClock();
    const frames: Int16Array[] = [];
    const sink: AudioSink = { write: (samples) => frames.push(samples) };
    const stream = new AudioStream({
      localAddress: "127.0.0.1",
      payloadType: 8,
      sink,
      clock,
      allowedDestinations: ["127.0.0.0/8"],
    });
    const sender = createSocket("udp4");
    try {
      const { rtpPort } = await stream.start();
      // The capture's 30-ms packets at their pace: three every 90 ms of 20-ms ticks.
      for (let i = 0; i < packets.length; i++) {
        await new Promise<void>((r) => sender.send(packets[i]!, rtpPort, "127.0.0.1", () => r()));
        await new Promise((r) => setTimeout(r, 1));
        if (i % 2 === 1) clock.tick(20);
        clock.tick(20);
      }
      await new Promise((r) => setTimeout(r, 20));
      clock.tick(400);
      const stats = stream.stats;
      assert.equal(stats.received, packets.length);
      assert.equal(stats.lost, 0);
      assert.ok(
        frames.every((f) => f.length === 160),
        "the sink gets 20-ms frames",
      );
      // 236 packets of 30 ms are 354 frames of 20 ms, played without gaps.
      const played = frames.filter((f) => f.some((s) => s !== 0)).length;
      assert.ok(played >= 340, `${played} of ${frames.length} frames carry the capture's audio`);
      const loud = frames.filter((f) => levelDbfs(f) > -50).length;
      assert.ok(loud > 100, `${loud} frames above -50 dBFS`);
      assert.ok(stats.underruns <= 25, `${stats.underruns} underruns`);
    } finally {
      sender.close();
      await stream.stop();
    }
  });

  test("dtmf_2833 captures: each holds one RFC 4733 event, reported once as its key", (t) => {
    const keys: Record<string, string> = { pound: "#", star: "*" };
    for (let d = 0; d <= 9; d++) keys[String(d)] = String(d);
    for (const [name, key] of Object.entries(keys)) {
      const file = capture(t, `dtmf_2833_${name}.pcap`);
      if (file === undefined) return;
      const receiver = new DtmfReceiver();
      const heard = rtpOf(file).flatMap((p) => {
        const digit = receiver.receive(p.payload, p.timestamp, p.ssrc);
        return digit === undefined ? [] : [digit.key];
      });
      assert.deepEqual(heard, [key], `dtmf_2833_${name}.pcap`);
    }
  });
});
