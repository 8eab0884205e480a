// VP8 over RTP against a real peer, ffmpeg (Debian `ffmpeg`, libavformat's RTP muxer and
// demuxer with their own VP8 packetizer and depacketizer): our stream sends the clip to
// ffmpeg, and ffmpeg sends it to our stream; ffprobe judges both recordings.
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { VideoStream, readIvfFile } from "../../../src/media/index.js";
import { eventually } from "../../helpers/eventually.js";
import {
  freeRtpPortPair,
  makeVideoClip,
  probeVideo,
  startTool,
  udpPortBound,
} from "../../helpers/video-clip.js";

const LOOPBACK = ["127.0.0.0/8", "::1/128"];

/** The SDP ffmpeg reads to receive VP8 on `port` (RTCP on port + 1). */
function vp8Sdp(port: number, payloadType: number): string {
  return [
    "v=0",
    "o=- 0 0 IN IP4 127.0.0.1",
    "s=sipsteer video test",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    `m=video ${port} RTP/AVP ${payloadType}`,
    `a=rtpmap:${payloadType} VP8/90000`,
    "",
  ].join("\r\n");
}

/** Forwards datagrams from `port` (and port + 1) to `to` (and its + 1), counting RTP ones. */
async function countingRelay(
  to: number,
): Promise<{ port: number; rtp: () => number; close: () => Promise<void> }> {
  const port = await freeRtpPortPair();
  let rtp = 0;
  const sockets: Socket[] = [];
  for (const [offset, count] of [
    [0, true],
    [1, false],
  ] as const) {
    const socket = createSocket("udp4");
    socket.on("message", (datagram) => {
      if (count) rtp++;
      socket.send(datagram, to + offset, "127.0.0.1");
    });
    await new Promise<void>((resolve) => socket.bind(port + offset, "127.0.0.1", resolve));
    sockets.push(socket);
  }
  return {
    port,
    rtp: () => rtp,
    close: () =>
      Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r())))).then(
        () => undefined,
      ),
  };
}

describe("VP8 over RTP with ffmpeg", () => {
  test("VideoStream sends the clip to ffmpeg, whose IVF ffprobe reads as VP8 with every frame", async (t) => {
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const port = await freeRtpPortPair();
    const sdp = join(clip.dir, "video.sdp");
    await writeFile(sdp, vp8Sdp(port, 97));
    const received = join(clip.dir, "ffmpeg-received.ivf");
    // -listen_timeout: ffmpeg's input would end 3 s after the last packet in any case.
    const ffmpeg = startTool("ffmpeg", [
      ...["-hide_banner", "-nostdin", "-loglevel", "info"],
      ...["-protocol_whitelist", "file,udp,rtp", "-listen_timeout", "3", "-i", sdp],
      ...["-c", "copy", "-f", "ivf", "-y", received],
    ]);
    const stream = new VideoStream({
      localAddress: "127.0.0.1",
      remote: { address: "127.0.0.1", port },
      payloadType: 97,
      send: { file: clip.path },
      allowedDestinations: LOOPBACK,
    });
    try {
      await eventually(
        async () => ((await udpPortBound(port)) ? true : undefined),
        10_000,
        "ffmpeg bound",
      );
      await stream.start();
      await stream.whenSent();
      // Our RTCP BYE ends ffmpeg's input (else its -listen_timeout would). It goes on the RTCP
      // socket, which ffmpeg may read before the RTP socket's last packets (one CI run: 49 of
      // 50 frames): give those a moment first.
      await new Promise((r) => setTimeout(r, 300));
      await stream.stop();
      assert.equal(await ffmpeg.exitWithin(10_000), 0, ffmpeg.output());
    } finally {
      await stream.stop();
      await ffmpeg.stop();
    }
    const stats = stream.stats;
    assert.equal(stats.sentFrames, clip.frames);
    assert.equal(stats.sentKeyframes, 2);
    assert.ok(stats.sentPackets >= stats.sentFrames);
    const probe = await probeVideo(received);
    assert.deepEqual(probe, { codec: "vp8", frames: clip.frames, width: 320, height: 240 });
    // ffmpeg's depacketizer gave back the very frames we packetized.
    const ours = (await readIvfFile(clip.path)).frames.map((f) => f.data);
    const theirs = (await readIvfFile(received)).frames.map((f) => f.data);
    assert.deepEqual(theirs, ours);
  });

  test("ffmpeg sends the clip as VP8 RTP; VideoStream records every frame and counts every packet", async (t) => {
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const recording = join(clip.dir, "recorded.ivf");
    const stream = new VideoStream({
      localAddress: "127.0.0.1",
      record: recording,
      allowedDestinations: LOOPBACK,
    });
    await stream.start();
    const relay = await countingRelay(stream.local.port);
    // ffmpeg's RTP muxer: VP8 descriptors with X=1, I=1 and a 15-bit PictureID; RTCP to port+1.
    const ffmpeg = startTool("ffmpeg", [
      ...["-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", clip.path],
      ...["-c", "copy", "-f", "rtp", `rtp://127.0.0.1:${relay.port}`],
    ]);
    try {
      assert.equal(await ffmpeg.exitWithin(12_000), 0, ffmpeg.output());
      await eventually(
        () => (stream.stats.receivedPackets === relay.rtp() ? true : undefined),
        5000,
        "every packet ffmpeg sent",
      );
    } finally {
      await ffmpeg.stop();
      await stream.stop();
      await relay.close();
    }
    const stats = stream.stats;
    assert.equal(stats.receivedPackets, relay.rtp());
    assert.equal(stats.receivedFrames, clip.frames);
    assert.equal(stats.recordedFrames, clip.frames);
    assert.equal(stats.receivedKeyframes, 2);
    assert.equal(stats.lost, 0);
    assert.equal(stats.framesDropped, 0);
    assert.equal(stats.discarded, 0);
    assert.ok(stats.jitterMs >= 0 && Number.isFinite(stats.jitterMs));
    const probe = await probeVideo(recording);
    assert.deepEqual(probe, { codec: "vp8", frames: clip.frames, width: 320, height: 240 });
    const ours = (await readIvfFile(clip.path)).frames.map((f) => f.data);
    const recorded = await readIvfFile(recording);
    assert.deepEqual(
      recorded.frames.map((f) => f.data),
      ours,
    );
    // 90 kHz pts from the RTP timestamps: 3600 a frame at 25 fps.
    assert.deepEqual(
      recorded.frames.map((f) => f.pts),
      ours.map((_, i) => BigInt(i * 3600)),
    );
  });
});
