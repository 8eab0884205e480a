// VP8 both ways with a real softphone: baresip (Debian `baresip-core`, headless: `fakevideo`
// as its camera and screen, `vp8` its codec, `ausine` a tone for the audio it insists on)
// calls a small SIP answerer of ours whose SDP answer points baresip's video at a
// VideoStream. Our stream records baresip's VP8 (ffprobe reads it); baresip decodes ours.
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { VideoStream, readDescription } from "../../../src/media/index.js";
import { createResponse } from "../../../src/sip/index.js";
import { SipPhone } from "../../helpers/sip-caller.js";
import { requireTool } from "../../helpers/tools.js";
import { makeVideoClip, probeVideo, startTool } from "../../helpers/video-clip.js";

const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const CALL_SECONDS = 6;

/** A headless baresip: ausine wants 48 kHz stereo and a frequency as its device. */
const BARESIP_CONFIG = [
  "poll_method epoll",
  "sip_listen 127.0.0.1:0",
  "module_path /usr/lib/baresip/modules",
  "module g711.so",
  "module ausine.so",
  "module fakevideo.so",
  "module vp8.so",
  "module_app account.so",
  "module_app menu.so",
  "audio_player ausine,1000",
  "audio_source ausine,1000",
  "audio_alert ausine,1000",
  "ausrc_srate 48000",
  "auplay_srate 48000",
  "ausrc_channels 2",
  "auplay_channels 1",
  "video_source fakevideo,nil",
  "video_display fakevideo,nil",
  "video_size 320x240",
  "video_fps 25",
  "video_bitrate 300000",
  "",
].join("\n");

describe("VP8 over RTP with baresip", () => {
  test("a baresip video call: we record its VP8, it decodes ours", async (t) => {
    if (!requireTool(t, "baresip", "baresip-core")) return;
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    await writeFile(join(clip.dir, "config"), BARESIP_CONFIG);
    await writeFile(join(clip.dir, "accounts"), "<sip:alice@127.0.0.1>;regint=0\n");
    const recording = join(clip.dir, "from-baresip.ivf");

    // baresip will not set up a call without audio: a socket takes its PCMU and drops it.
    const audio = createSocket("udp4");
    await new Promise<void>((resolve) => audio.bind(0, "127.0.0.1", resolve));
    const stream = new VideoStream({
      localAddress: "127.0.0.1",
      send: { file: clip.path, loop: true },
      record: recording,
      // baresip's SDP names its eth0 address, outside the loopback we may send to: we answer
      // where its RTP comes from instead (symmetric RTP, as behind a NAT).
      symmetricRtp: true,
      allowedDestinations: LOOPBACK,
    });
    await stream.start();
    const phone = await SipPhone.start({ user: "video" });
    let offered: string | undefined;
    phone.onInvite = (incoming) => {
      offered = incoming.request.body.toString();
      const offer = readDescription(offered);
      const video = offer.streams.find((s) => s.kind === "video")!;
      const vp8 = video.codecs.find((c) => c.name.toUpperCase() === "VP8")!;
      stream.setRemote({ address: video.address, port: video.port, rtcpPort: video.rtcpPort });
      const answer = [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=sipsteer video test",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        `m=audio ${audio.address().port} RTP/AVP 0`,
        "a=rtpmap:0 PCMU/8000",
        `m=video ${stream.local.port} RTP/AVP ${vp8.payloadType}`,
        `a=rtpmap:${vp8.payloadType} VP8/90000`,
        "",
      ].join("\r\n");
      const ok = createResponse(incoming.request, 200, { toTag: "video1" });
      ok.appendHeader("Contact", `<${phone.contactUri()}>`);
      ok.setBody(answer, "application/sdp");
      incoming.tx.respond(ok);
    };
    const baresip = startTool("baresip", [
      ...["-f", clip.dir, "-t", String(CALL_SECONDS)],
      ...["-e", `/dial sip:video@127.0.0.1:${phone.port()}`],
    ]);
    try {
      assert.equal(await baresip.exitWithin(CALL_SECONDS * 1000 + 6000), 0, baresip.output());
    } finally {
      await baresip.stop();
      await stream.stop();
      await phone.stop();
      await new Promise<void>((resolve) => audio.close(() => resolve()));
    }
    const output = baresip.output();
    assert.match(offered ?? "", /a=rtpmap:\d+ VP8\/90000/);
    assert.match(output, /Call established/);
    // baresip's vp8 module decoded what we sent.
    assert.match(
      output,
      /video: receiving with resolution 320 x 240/,
      JSON.stringify(stream.stats),
    );
    const stats = stream.stats;
    assert.equal(stream.remote?.address, "127.0.0.1");
    assert.ok(stats.sentFrames > 0 && stats.sentKeyframes > 0, JSON.stringify(stats));
    assert.ok(stats.receivedFrames > 25, JSON.stringify(stats));
    assert.ok(stats.receivedKeyframes >= 1);
    assert.equal(stats.lost, 0);
    assert.equal(stats.framesDropped, 0);
    const probe = await probeVideo(recording);
    assert.deepEqual(probe, {
      codec: "vp8",
      frames: stats.recordedFrames,
      width: 320,
      height: 240,
    });
  });
});
