// SDP offer/answer (RFC 3264) for G.711 audio with telephone-event, and a VP8 m-line: offers,
// answers choosing the offerer's first common codec, reading c= at either level, IPv6, port 0,
// hold, a=rtcp and rtcp-mux; 488 when nothing is common.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import {
  SdpError,
  answerOffer,
  buildOffer,
  readAnswer,
  readDescription,
} from "../../src/media/index.js";
import { requireTool } from "../helpers/tools.js";

const lines = (sdp: string): string[] => sdp.split("\r\n");

// An offer as baresip 3 sends it (trimmed), c= at session level.
const baresipOffer = [
  "v=0",
  "o=- 1234 5678 IN IP4 127.0.0.1",
  "s=-",
  "c=IN IP4 127.0.0.1",
  "t=0 0",
  "m=audio 10000 RTP/AVP 8 0 101",
  "b=AS:64",
  "a=rtpmap:8 PCMA/8000",
  "a=rtpmap:0 PCMU/8000",
  "a=rtpmap:101 telephone-event/8000",
  "a=fmtp:101 0-15",
  "a=sendrecv",
  "a=label:1",
  "a=ssrc:123 cname:abc",
  "a=rtcp-rsize",
  "a=ptime:20",
  "m=video 10002 RTP/AVP 100",
  "a=rtpmap:100 VP8/90000",
  "a=rtcp-fb:100 nack pli",
  "",
].join("\r\n");

describe("SDP offer/answer", () => {
  test("the offer: PCMU, PCMA, telephone-event 101, ptime 20, sendrecv; VP8 when asked", () => {
    const sdp = buildOffer({
      address: "127.0.0.1",
      audioPort: 20000,
      videoPort: 20002,
      sessionId: "42",
    });
    const l = lines(sdp);
    assert.ok(l.includes("c=IN IP4 127.0.0.1"));
    assert.ok(l.includes("m=audio 20000 RTP/AVP 0 8 101"));
    assert.ok(l.includes("a=rtpmap:0 PCMU/8000"));
    assert.ok(l.includes("a=rtpmap:8 PCMA/8000"));
    assert.ok(l.includes("a=rtpmap:101 telephone-event/8000"));
    assert.ok(l.includes("a=fmtp:101 0-16"));
    assert.ok(l.includes("a=ptime:20"));
    assert.ok(l.includes("a=sendrecv"));
    assert.ok(l.includes("m=video 20002 RTP/AVP 96"));
    assert.ok(l.includes("a=rtpmap:96 VP8/90000"));
    assert.ok(l.includes("a=rtcp-fb:96 nack pli"));
    const read = readDescription(sdp);
    assert.equal(read.sessionId, "42");
    assert.deepEqual(
      read.streams.map((s) => [s.kind, s.port, s.codecs[0]?.name, s.rtcpPort]),
      [
        ["audio", 20000, "PCMU", 20001],
        ["video", 20002, "VP8", 20003],
      ],
    );
  });

  test("answering baresip: its first common codec (PCMA), its telephone-event, video refused without a port", () => {
    const answer = answerOffer(baresipOffer, { address: "127.0.0.1", audioPort: 30000 });
    assert.equal(answer.audio?.codec, "PCMA");
    assert.equal(answer.audio?.payloadType, 8);
    assert.equal(answer.audio?.telephoneEventPt, 101);
    assert.equal(answer.audio?.remote.address, "127.0.0.1");
    assert.equal(answer.audio?.remote.port, 10000);
    assert.equal(answer.audio?.remote.rtcpPort, 10001);
    assert.equal(answer.audio?.direction, "sendrecv");
    assert.equal(answer.video, undefined);
    const l = lines(answer.sdp);
    assert.ok(l.includes("m=audio 30000 RTP/AVP 8 101"));
    assert.ok(
      l.includes("m=video 0 RTP/AVP 100"),
      "an m-line per offered one, refused with port 0",
    );
    const withVideo = answerOffer(baresipOffer, {
      address: "127.0.0.1",
      audioPort: 30000,
      videoPort: 30002,
    });
    assert.equal(withVideo.video?.payloadType, 100);
    assert.ok(lines(withVideo.sdp).includes("m=video 30002 RTP/AVP 100"));
  });

  test("our answer is read back by the offerer", () => {
    const local = { address: "127.0.0.1", audioPort: 20000, videoPort: 20002 };
    const offer = buildOffer(local);
    const answer = answerOffer(offer, {
      address: "127.0.0.2",
      audioPort: 40000,
      audioCodecs: ["PCMA"],
    });
    const read = readAnswer(answer.sdp, local);
    assert.equal(read.audio?.codec, "PCMA");
    assert.equal(read.audio?.remote.address, "127.0.0.2");
    assert.equal(read.audio?.remote.port, 40000);
    assert.equal(read.audio?.telephoneEventPt, 101);
    assert.equal(read.video, undefined);
  });

  test("no common codec is a typed error a UAS answers 488 with", () => {
    const g729 = baresipOffer
      .replace("m=audio 10000 RTP/AVP 8 0 101", "m=audio 10000 RTP/AVP 18 101")
      .replace("m=video 10002 RTP/AVP 100", "m=video 10002 RTP/AVP 97")
      .replace("a=rtpmap:100 VP8/90000", "a=rtpmap:97 H264/90000");
    assert.throws(
      () => answerOffer(g729, { address: "127.0.0.1", audioPort: 30000, videoPort: 30002 }),
      (e: unknown) => e instanceof SdpError && e.code === "no-common-codec" && e.status === 488,
    );
  });

  test("c= at media level overrides the session's; IPv6; a=rtcp; rtcp-mux", () => {
    const sdp = [
      "v=0",
      "o=- 1 1 IN IP6 ::1",
      "s=-",
      "c=IN IP6 ::1",
      "t=0 0",
      "m=audio 5004 RTP/AVP 0",
      "c=IN IP4 127.0.0.5",
      "a=rtcp:6000 IN IP4 127.0.0.6",
      "m=audio 5008 RTP/AVP 0",
      "a=rtcp-mux",
      "",
    ].join("\r\n");
    const [first, second] = readDescription(sdp).streams;
    assert.equal(first?.address, "127.0.0.5");
    assert.equal(first?.addressFamily, 4);
    assert.equal(first?.rtcpPort, 6000);
    assert.equal(first?.rtcpAddress, "127.0.0.6");
    assert.equal(first?.codecs[0]?.name, "PCMU", "static payload type without rtpmap");
    assert.equal(second?.address, "::1");
    assert.equal(second?.addressFamily, 6);
    assert.equal(second?.rtcpMux, true);
    assert.equal(second?.rtcpPort, 5008);
    const offer6 = buildOffer({ address: "::1", audioPort: 7000, rtcpMux: true });
    assert.ok(lines(offer6).includes("c=IN IP6 ::1"));
    assert.ok(lines(offer6).includes("a=rtcp-mux"));
    const answer = answerOffer(offer6, { address: "::1", audioPort: 7002 });
    assert.equal(answer.audio?.rtcpMux, true);
    assert.ok(lines(answer.sdp).includes("a=rtcp-mux"));
  });

  test("hold: sendonly is answered recvonly, inactive inactive, c=0.0.0.0 sends nothing", () => {
    const sendonly = baresipOffer.replace("a=sendrecv", "a=sendonly");
    const a1 = answerOffer(sendonly, { address: "127.0.0.1", audioPort: 30000 });
    assert.equal(a1.audio?.direction, "recvonly");
    assert.equal(a1.audio?.remote.hold, true);
    assert.deepEqual([a1.audio?.send, a1.audio?.receive], [false, true]);
    assert.ok(lines(a1.sdp).includes("a=recvonly"));
    const inactive = baresipOffer.replace("a=sendrecv", "a=inactive");
    assert.equal(
      answerOffer(inactive, { address: "127.0.0.1", audioPort: 30000 }).audio?.direction,
      "inactive",
    );
    const oldHold = baresipOffer.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    const a3 = answerOffer(oldHold, { address: "127.0.0.1", audioPort: 30000 });
    assert.equal(a3.audio?.remote.hold, true);
    assert.equal(a3.audio?.send, false);
    const recvonly = answerOffer(
      buildOffer({ address: "127.0.0.1", audioPort: 1, direction: "recvonly" }),
      {
        address: "127.0.0.1",
        audioPort: 30000,
      },
    );
    assert.equal(recvonly.audio?.direction, "sendonly");
  });

  test("port 0 is a rejected stream; unusable descriptions are typed errors", () => {
    const rejected = baresipOffer.replace("m=audio 10000", "m=audio 0");
    const stream = readDescription(rejected).streams[0];
    assert.equal(stream?.rejected, true);
    assert.throws(
      () => answerOffer(rejected, { address: "127.0.0.1", audioPort: 30000 }),
      /no offered stream/,
    );
    assert.throws(
      () => readDescription("v=0\r\ns=-\r\n"),
      (e: unknown) => e instanceof SdpError && e.code === "no-media",
    );
    assert.throws(
      () => readDescription("v=0\r\ns=-\r\nm=audio 5000 RTP/AVP 0\r\n"),
      (e: unknown) => e instanceof SdpError && e.code === "no-connection",
    );
    assert.throws(() => readDescription("garbage"), SdpError);
  });

  test("ffmpeg's SDP for a PCMA RTP stream reads as PCMA on its port", (t) => {
    if (!requireTool(t, "ffmpeg", "ffmpeg")) return;
    const run = spawnSync(
      "ffmpeg",
      [
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        "sine=duration=0.1:sample_rate=8000",
        "-acodec",
        "pcm_alaw",
        "-f",
        "rtp",
        "rtp://127.0.0.1:9",
      ],
      { timeout: 20_000 },
    );
    assert.equal(run.status, 0, run.stderr.toString());
    const [stream] = readDescription(
      // ffmpeg prints "SDP:" and the description on stdout.
      run.stdout
        .toString()
        .replace(/^SDP:\s*/, "")
        .replace(/\r?\n/g, "\r\n"),
    ).streams;
    assert.equal(stream?.port, 9);
    assert.equal(stream?.address, "127.0.0.1");
    assert.equal(stream?.codecs[0]?.name, "PCMA");
  });
});
