// VideoStream, one VP8 stream over RTP: two of them over loopback, symmetric RTP, the
// allowedDestinations list, pacing by the clock across loops, PLI both ways, bad input.
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  IvfFormatError,
  VideoStream,
  Vp8Packetizer,
  parseVideoStreamOptions,
  readIvfFile,
  readPictureLossIndications,
  readRtcpCompound,
  readRtpPacket,
  readVp8Descriptor,
  writePictureLossRequest,
  writeRtpPacket,
  type RtpPacket,
} from "../../../src/media/index.js";
import { eventually } from "../../helpers/eventually.js";
import { FakeClock } from "../../helpers/fake-clock.js";
import { openHandles } from "../../helpers/handles.js";
import { freeRtpPortPair, makeVideoClip } from "../../helpers/video-clip.js";

const LOOPBACK = ["127.0.0.0/8", "::1/128"];

/** A bare UDP socket standing for the far end, keeping what arrives. */
async function rawSocket(port = 0): Promise<{ socket: Socket; port: number; received: Buffer[] }> {
  const socket = createSocket("udp4");
  const received: Buffer[] = [];
  socket.on("message", (datagram) => received.push(datagram));
  await new Promise<void>((resolve) => socket.bind(port, "127.0.0.1", resolve));
  return { socket, port: socket.address().port, received };
}

const closeSocket = (socket: Socket): Promise<void> =>
  new Promise((resolve) => socket.close(() => resolve()));

/** A frame that reads as a VP8 key frame (P=0 and the start code) or an interframe. */
function vp8Frame(size: number, keyframe: boolean): Buffer {
  const frame = Buffer.alloc(size, 0x42);
  frame[0] = keyframe ? 0x10 : 0x11;
  if (keyframe) {
    frame.set([0x9d, 0x01, 0x2a], 3);
    frame.writeUInt16LE(64, 6);
    frame.writeUInt16LE(48, 8);
  }
  return frame;
}

describe("VideoStream", () => {
  test("one stream sends the clip to another, which records every frame; stop leaves nothing open", async (t) => {
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const before = await openHandles();
    const recording = join(clip.dir, "b.ivf");
    const b = new VideoStream({
      localAddress: "127.0.0.1",
      record: recording,
      allowedDestinations: LOOPBACK,
    });
    await b.start();
    const a = new VideoStream({
      localAddress: "127.0.0.1",
      remote: { address: "127.0.0.1", port: b.local.port },
      send: { file: clip.path },
      allowedDestinations: LOOPBACK,
    });
    try {
      await a.start();
      assert.equal(a.local.rtcpPort, a.local.port + 1);
      assert.equal(a.local.port % 2, 0);
      await a.whenSent();
      await eventually(
        () => (b.stats.receivedFrames === clip.frames ? true : undefined),
        5000,
        "all frames",
      );
    } finally {
      await a.stop();
      await b.stop();
    }
    assert.deepEqual(await openHandles(), before);
    const sent = a.stats;
    const got = b.stats;
    assert.equal(sent.sentFrames, clip.frames);
    assert.equal(got.receivedPackets, sent.sentPackets);
    assert.equal(got.receivedBytes, sent.sentBytes - 4 * sent.sentPackets);
    assert.equal(got.receivedKeyframes, sent.sentKeyframes);
    assert.equal(got.lost, 0);
    assert.equal(got.pliSent, 0);
    const recorded = await readIvfFile(recording);
    assert.equal(recorded.header.width, 320);
    assert.equal(recorded.header.height, 240);
    assert.deepEqual(
      recorded.frames.map((f) => f.data),
      (await readIvfFile(clip.path)).frames.map((f) => f.data),
    );
  });

  test("over IPv6 loopback, with RTP and RTCP muxed on one port", async (t) => {
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const b = new VideoStream({
      localAddress: "::1",
      rtcpMux: true,
      allowedDestinations: LOOPBACK,
    });
    await b.start();
    const a = new VideoStream({
      localAddress: "::1",
      rtcpMux: true,
      remote: { address: "::1", port: b.local.port },
      send: { file: clip.path },
      allowedDestinations: LOOPBACK,
    });
    try {
      await a.start();
      await a.whenSent();
      await eventually(
        () => (b.stats.receivedFrames === clip.frames ? true : undefined),
        5000,
        "all frames",
      );
    } finally {
      await a.stop();
      await b.stop();
    }
    assert.equal(a.remote?.rtcpPort, b.local.port);
    assert.equal(b.stats.lost, 0);
    assert.equal(b.stats.discarded, 0);
  });

  test("symmetric RTP: a stream with no remote latches to its peer's source, which asks it for a key frame", async (t) => {
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const recording = join(clip.dir, "a.ivf");
    // b sends from the start with nowhere to send: its first key frame is gone by the time
    // it latches, so a gets interframes first and asks with a PLI (which b can only count).
    const b = new VideoStream({
      localAddress: "127.0.0.1",
      symmetricRtp: true,
      send: { file: clip.path, loop: true },
      allowedDestinations: LOOPBACK,
    });
    await b.start();
    assert.equal(b.remote, undefined);
    const a = new VideoStream({
      localAddress: "127.0.0.1",
      remote: { address: "127.0.0.1", port: b.local.port },
      send: { file: clip.path, loop: true },
      record: recording,
      allowedDestinations: LOOPBACK,
    });
    try {
      await a.start();
      await eventually(
        () => (a.stats.recordedFrames >= 5 ? true : undefined),
        5000,
        "frames from b",
      );
      await eventually(() => (b.stats.pliReceived > 0 ? true : undefined), 5000, "a PLI at b");
    } finally {
      await a.stop();
      await b.stop();
    }
    assert.deepEqual(b.remote, {
      address: "127.0.0.1",
      port: a.local.port,
      rtcpPort: a.local.rtcpPort,
    });
    assert.ok(a.stats.pliSent >= 1);
    assert.ok(a.stats.receivedFrames > a.stats.recordedFrames, "interframes before the key frame");
    const recorded = await readIvfFile(recording);
    assert.equal(recorded.frames.length, a.stats.recordedFrames);
    assert.equal(recorded.frames[0]!.data[0]! & 1, 0, "the recording starts with a key frame");
  });

  test("sends only where allowedDestinations permit, and latches nowhere else", async (t) => {
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const b = new VideoStream({
      localAddress: "127.0.0.1",
      symmetricRtp: true,
      send: { file: clip.path, loop: true },
      allowedDestinations: ["10.0.0.0/8"],
    });
    await b.start();
    const a = new VideoStream({
      localAddress: "127.0.0.1",
      remote: { address: "127.0.0.1", port: b.local.port },
      send: { file: clip.path },
      allowedDestinations: ["10.0.0.0/8"],
    });
    const c = new VideoStream({
      localAddress: "127.0.0.1",
      remote: { address: "127.0.0.1", port: b.local.port },
      send: { file: clip.path },
      allowedDestinations: LOOPBACK,
    });
    try {
      await a.start();
      await c.start();
      await a.whenSent();
      await c.whenSent();
      await eventually(
        () => (b.stats.receivedFrames === clip.frames ? true : undefined),
        5000,
        "c's frames",
      );
    } finally {
      await Promise.all([a.stop(), b.stop(), c.stop()]);
    }
    assert.equal(a.stats.sentPackets, 0);
    assert.ok(a.stats.refusedSends > 0);
    // c's packets reached b, but b may not send back to 127.0.0.1: no latch, nothing sent.
    assert.equal(b.remote, undefined);
    assert.equal(b.stats.sentPackets, 0);
    assert.equal(c.stats.receivedPackets, 0);
  });

  test("paced by the clock: a frame at each pts, the loop going on with timestamps, sequence and PictureIDs", async (t) => {
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const clock = new FakeClock();
    const far = await rawSocket();
    const a = new VideoStream(
      {
        localAddress: "127.0.0.1",
        remote: { address: "127.0.0.1", port: far.port },
        send: { file: clip.path, loop: true },
        allowedDestinations: LOOPBACK,
        mtu: 600,
      },
      { clock },
    );
    try {
      await a.start();
      assert.equal(a.stats.sentFrames, 1, "the first frame leaves at once");
      clock.tick(39);
      assert.equal(a.stats.sentFrames, 1);
      clock.tick(1);
      assert.equal(a.stats.sentFrames, 2, "the next 40 ms later (25 fps)");
      clock.tick(1959);
      assert.equal(a.stats.sentFrames, 50, "the whole file by 1960 ms");
      clock.tick(1);
      assert.equal(a.stats.sentFrames, 51, "the loop's first frame at 2000 ms");
      clock.tick(40);
      assert.equal(a.stats.sentFrames, 52);
      await eventually(
        () => (far.received.length === a.stats.sentPackets ? true : undefined),
        5000,
        "packets",
      );
    } finally {
      await a.stop();
      await closeSocket(far.socket);
    }
    assert.equal(clock.pending, 0, "stop() clears the timer");
    const packets = far.received.map((d) => readRtpPacket(d) as RtpPacket);
    assert.ok(
      packets.every((p) => typeof p === "object" && p.payloadType === 96 && p.ssrc === a.ssrc),
    );
    // The MTU leaves 60 bytes for IPv6, UDP and RTP headers.
    assert.ok(packets.every((p) => p.payload.length <= 600 - 60));
    for (let i = 1; i < packets.length; i++) {
      assert.equal(packets[i]!.sequence, (packets[0]!.sequence + i) & 0xffff);
    }
    // One timestamp a frame, 3600 apart (90 kHz at 25 fps), through the loop.
    const starts = packets.filter((p) => (p.payload[0]! & 0x10) !== 0);
    assert.equal(starts.length, 52);
    assert.deepEqual(
      starts.map((p) => (p.timestamp - starts[0]!.timestamp) >>> 0),
      starts.map((_, i) => i * 3600),
    );
    const pictureIds = starts.map((p) => {
      const read = readVp8Descriptor(p.payload);
      assert.ok(typeof read === "object");
      return read.descriptor.pictureId!;
    });
    assert.deepEqual(
      pictureIds,
      pictureIds.map((_, i) => (pictureIds[0]! + i) % 0x8000),
    );
    // The marker on the last packet of each frame: just before each next start.
    const markers = packets.flatMap((p, i) => (p.marker ? [i] : []));
    const startIndexes = packets.flatMap((p, i) => ((p.payload[0]! & 0x10) !== 0 ? [i] : []));
    assert.deepEqual(markers, [...startIndexes.slice(1).map((i) => i - 1), packets.length - 1]);
  });

  test("RTCP every interval: an SR from the sender, an RR about it from the receiver, a BYE at stop (RFC 3550 §6.4)", async (t) => {
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const port = await freeRtpPortPair();
    const far = await rawSocket(port);
    const farRtcp = await rawSocket(port + 1);
    const senderClock = new FakeClock();
    const receiverClock = new FakeClock();
    const deps = { random: () => 0.5, wallNow: () => Date.UTC(2026, 0, 1) };
    const b = new VideoStream(
      {
        localAddress: "127.0.0.1",
        remote: { address: "127.0.0.1", port },
        allowedDestinations: LOOPBACK,
        rtcpIntervalMs: 1000,
      },
      { ...deps, clock: receiverClock },
    );
    await b.start();
    const a = new VideoStream(
      {
        localAddress: "127.0.0.1",
        remote: { address: "127.0.0.1", port: b.local.port, rtcpPort: port + 1 },
        send: { file: clip.path },
        allowedDestinations: LOOPBACK,
        rtcpIntervalMs: 1000,
      },
      { ...deps, clock: senderClock },
    );
    let packetsBeforeReport: number;
    try {
      await a.start();
      senderClock.tick(999);
      packetsBeforeReport = a.stats.sentPackets;
      await eventually(
        () => (b.stats.receivedFrames === 25 ? true : undefined),
        5000,
        "a second of frames",
      );
      // At 1000 ms the report falls due before frame 25 (its timer was set first).
      senderClock.tick(1);
      receiverClock.tick(1000);
      await eventually(
        () => (farRtcp.received.length === 2 ? true : undefined),
        5000,
        "two reports",
      );
    } finally {
      await a.stop();
      await b.stop();
    }
    await eventually(() => (farRtcp.received.length === 4 ? true : undefined), 5000, "two BYEs");
    await closeSocket(far.socket);
    await closeSocket(farRtcp.socket);
    const compounds = farRtcp.received.map((d) => {
      const read = readRtcpCompound(d);
      assert.ok(read.ok, read.ok ? "" : read.reason);
      return read.packets;
    });
    const sr = compounds.flat().find((p) => p.type === "sr" && p.ssrc === a.ssrc);
    assert.ok(sr?.type === "sr");
    assert.equal(sr.packetCount, packetsBeforeReport);
    assert.ok(sr.octetCount > packetsBeforeReport * 4);
    assert.equal(sr.ntpSeconds, Date.UTC(2026, 0, 1) / 1000 + 2208988800);
    const rr = compounds.flat().find((p) => p.type === "rr" && p.ssrc === b.ssrc);
    assert.ok(rr?.type === "rr");
    assert.equal(rr.reports.length, 1);
    assert.equal(rr.reports[0]!.ssrc, a.ssrc);
    assert.equal(rr.reports[0]!.cumulativeLost, 0);
    const byes = compounds.filter((c) => c.some((p) => p.type === "bye"));
    assert.equal(byes.length, 2);
    assert.ok(byes.every((c) => c[0]!.type === "sr" || c[0]!.type === "rr"));
    assert.ok(compounds.every((c) => c.some((p) => p.type === "sdes")));
  });

  test("a frame that lost a packet brings an RTCP PLI to its sender (RFC 4585 §6.3.1)", async () => {
    const port = await freeRtpPortPair();
    const senderRtp = await rawSocket(port);
    const senderRtcp = await rawSocket(port + 1);
    const b = new VideoStream({
      localAddress: "127.0.0.1",
      remote: { address: "127.0.0.1", port },
      allowedDestinations: LOOPBACK,
    });
    const senderSsrc = 0x5eed;
    try {
      await b.start();
      const packetizer = new Vp8Packetizer({ maxPayloadBytes: 100, firstPictureId: 0 });
      let sequence = 65530;
      const frames = [vp8Frame(300, true), vp8Frame(300, false), vp8Frame(300, false)];
      frames.forEach((frame, i) => {
        packetizer.packetize(frame).forEach((part, j) => {
          const datagram = writeRtpPacket({
            payloadType: 96,
            sequence: sequence++ & 0xffff,
            timestamp: 1000 + i * 3000,
            ssrc: senderSsrc,
            marker: part.marker,
            payload: part.payload,
          });
          if (!(i === 1 && j === 1)) senderRtp.socket.send(datagram, b.local.port, "127.0.0.1");
        });
      });
      await eventually(() => (senderRtcp.received.length > 0 ? true : undefined), 5000, "a PLI");
    } finally {
      await b.stop();
      await closeSocket(senderRtp.socket);
      await closeSocket(senderRtcp.socket);
    }
    assert.equal(b.stats.receivedFrames, 2);
    assert.equal(b.stats.framesDropped, 1);
    assert.equal(b.stats.lost, 1);
    assert.equal(b.stats.pliSent, 1);
    assert.deepEqual(readPictureLossIndications(senderRtcp.received[0]!), [
      { senderSsrc: b.ssrc, mediaSsrc: senderSsrc },
    ]);
  });

  test("a received PLI is counted, on the RTCP port or a muxed one", async () => {
    const far = await rawSocket();
    const split = new VideoStream({ localAddress: "127.0.0.1", allowedDestinations: LOOPBACK });
    const muxed = new VideoStream({
      localAddress: "127.0.0.1",
      rtcpMux: true,
      allowedDestinations: LOOPBACK,
    });
    try {
      await split.start();
      await muxed.start();
      assert.equal(muxed.local.rtcpPort, muxed.local.port);
      for (const stream of [split, muxed]) {
        const pli = writePictureLossRequest({
          senderSsrc: 7,
          mediaSsrc: stream.ssrc,
          cname: "far@test",
        });
        far.socket.send(pli, stream.local.rtcpPort, "127.0.0.1");
        // A PLI about someone else is not ours.
        far.socket.send(
          writePictureLossRequest({ senderSsrc: 7, mediaSsrc: stream.ssrc ^ 1, cname: "x" }),
          stream.local.rtcpPort,
          "127.0.0.1",
        );
      }
      await eventually(
        () => (split.stats.pliReceived === 1 && muxed.stats.pliReceived === 1 ? true : undefined),
        5000,
        "both PLIs",
      );
    } finally {
      await split.stop();
      await muxed.stop();
      await closeSocket(far.socket);
    }
    assert.equal(muxed.stats.discarded, 0);
  });

  test("damaged datagrams are counted and dropped, never thrown", async () => {
    const far = await rawSocket();
    const b = new VideoStream({ localAddress: "127.0.0.1", allowedDestinations: LOOPBACK });
    try {
      await b.start();
      const bad = [
        Buffer.from("not rtp at all"),
        Buffer.alloc(3),
        writeRtpPacket({
          payloadType: 0,
          sequence: 1,
          timestamp: 1,
          ssrc: 9,
          payload: Buffer.alloc(10),
        }),
        writeRtpPacket({
          payloadType: 96,
          sequence: 2,
          timestamp: 1,
          ssrc: 9,
          payload: Buffer.from([0x90, 0x80]),
        }),
        writeRtpPacket({
          payloadType: 96,
          sequence: 3,
          timestamp: 1,
          ssrc: 9,
          payload: Buffer.alloc(0),
        }),
      ];
      for (const datagram of bad) far.socket.send(datagram, b.local.port, "127.0.0.1");
      await eventually(
        () => (b.stats.discarded === bad.length ? true : undefined),
        5000,
        "all counted",
      );
    } finally {
      await b.stop();
      await closeSocket(far.socket);
    }
    assert.equal(b.stats.receivedFrames, 0);
  });

  test("bad options name their field; a bad file fails start() and leaves nothing open", async (t) => {
    const fields: [object, string][] = [
      [{ localAddress: "nowhere" }, "localAddress"],
      [
        { localAddress: "127.0.0.1", allowedDestinations: ["300.1.1.0/8"] },
        "allowedDestinations.0",
      ],
      [{ localAddress: "127.0.0.1", remote: { address: "127.0.0.1", port: 0 } }, "remote.port"],
      [{ localAddress: "127.0.0.1", mtu: 40 }, "mtu"],
      [{ localAddress: "127.0.0.1", payloadType: 128 }, "payloadType"],
    ];
    assert.throws(
      () => new VideoStream({ localAddress: "127.0.0.1" }).setRemote({ address: "x", port: 5 }),
      /remote\.address: /,
    );
    for (const [options, path] of fields) {
      assert.throws(
        () => parseVideoStreamOptions(options),
        (error: unknown) => error instanceof RangeError && error.message.includes(`: ${path}: `),
        path,
      );
    }
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const before = await openHandles();
    const notIvf = join(clip.dir, "not.ivf");
    await writeFile(notIvf, "RIFF....WAVEfmt ");
    const stream = new VideoStream({
      localAddress: "127.0.0.1",
      send: { file: notIvf },
      record: join(clip.dir, "never.ivf"),
    });
    await assert.rejects(stream.start(), IvfFormatError);
    await assert.rejects(stream.start(), /cannot start when stopped/);
    assert.deepEqual(await openHandles(), before);
  });
});
