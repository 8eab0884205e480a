// Browser and plain-RTP calls before the media relay (issue 7): the profile of an SDP offer
// (UDP/TLS/RTP/SAVPF or RTP/SAVPF = WebRTC, RTP/AVP = plain), the profile of a binding (a
// Contact registered with transport=ws or wss is a browser), and the proxy that forks an
// INVITE only to contacts of the offer's profile and answers 488 with a Warning when none is
// left.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  MEDIA_RELAY_MISSING,
  MEDIA_RELAY_MISSING_REASON,
  bindingProfile,
  needsMediaRelay,
  offerProfile,
  sdpProfile,
} from "../../src/proxy/media-profile.js";
import { Proxy } from "../../src/proxy/index.js";
import type { SendTarget } from "../../src/sip/index.js";
import { openHandles } from "../helpers/handles.js";
import { DOMAIN, LOOPBACK, SipPhone, newRequest } from "../helpers/sip-caller.js";

const WEBRTC_SDP = [
  "v=0",
  "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE 0 1",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
  "c=IN IP4 0.0.0.0",
  "a=candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host",
  "a=fingerprint:sha-256 AA:BB",
  "a=setup:actpass",
  "a=rtpmap:111 opus/48000/2",
  "m=video 9 UDP/TLS/RTP/SAVPF 96",
  "c=IN IP4 0.0.0.0",
  "a=rtpmap:96 VP8/90000",
  "",
].join("\r\n");

const PLAIN_SDP = [
  "v=0",
  "o=phone 1 1 IN IP4 127.0.0.1",
  "s=-",
  "c=IN IP4 127.0.0.1",
  "t=0 0",
  "m=audio 40000 RTP/AVP 0 101",
  "a=rtpmap:0 PCMU/8000",
  "",
].join("\r\n");

function invite(sdp: string | undefined, contentType = "application/sdp") {
  const request = newRequest("INVITE", `sip:dave@${DOMAIN}`);
  if (sdp !== undefined) request.setBody(sdp, contentType);
  return request;
}

describe("media profiles", () => {
  test("an SDP's profile is its first active RTP m-line's transport protocol", () => {
    assert.equal(sdpProfile(WEBRTC_SDP), "webrtc");
    assert.equal(sdpProfile(PLAIN_SDP), "plain");
    assert.equal(sdpProfile("v=0\r\nm=audio 5004 RTP/SAVPF 0\r\n"), "webrtc", "RFC 5124");
    assert.equal(sdpProfile("v=0\r\nm=audio 5004 RTP/AVPF 0\r\n"), "plain");
    assert.equal(sdpProfile("v=0\r\nm=audio 5004 RTP/SAVP 0\r\n"), "plain", "SDES-SRTP");
    assert.equal(sdpProfile("v=0\nm=video 5006/2 rtp/avp 96\n"), "plain", "LF lines, port count");
    // A disabled stream (port 0) and a data channel do not decide.
    assert.equal(
      sdpProfile("v=0\r\nm=audio 0 RTP/AVP 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"),
      "webrtc",
    );
    assert.equal(
      sdpProfile("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"),
      undefined,
    );
    assert.equal(sdpProfile("v=0\r\ns=-\r\n"), undefined);
  });

  test("an INVITE's offer: only an application/sdp body counts", () => {
    assert.equal(offerProfile(invite(WEBRTC_SDP)), "webrtc");
    assert.equal(offerProfile(invite(PLAIN_SDP, "Application/SDP")), "plain");
    assert.equal(offerProfile(invite(undefined)), undefined, "no offer: decided by the 2xx");
    assert.equal(offerProfile(invite(PLAIN_SDP, "text/plain")), undefined);
    assert.equal(offerProfile(invite(PLAIN_SDP, "not a media type")), undefined, "bad header");
  });

  test("a binding registered over WebSocket is a browser; every other one a plain phone", () => {
    assert.equal(
      bindingProfile({ contact: "sip:o172shva@0eal4092ou70.invalid;transport=ws" }),
      "webrtc",
    );
    assert.equal(bindingProfile({ contact: "sip:bob@h.invalid;transport=WSS;ob" }), "webrtc");
    assert.equal(bindingProfile({ contact: "sip:bob@127.0.0.1:5062" }), "plain");
    assert.equal(bindingProfile({ contact: "sip:bob@127.0.0.1:5062;transport=tcp" }), "plain");
    assert.equal(bindingProfile({ contact: "tel:+15551234" }), "plain");
    assert.equal(bindingProfile({ contact: "::not a uri::" }), "plain");
  });

  test("the relay is needed only when an offer's profile differs from the binding's", () => {
    const browser = { contact: "sip:x@y.invalid;transport=ws" };
    const phone = { contact: "sip:x@127.0.0.1:5062" };
    assert.equal(needsMediaRelay("webrtc", phone), true);
    assert.equal(needsMediaRelay("plain", browser), true);
    assert.equal(needsMediaRelay("webrtc", browser), false);
    assert.equal(needsMediaRelay("plain", phone), false);
    assert.equal(needsMediaRelay(undefined, browser), false);
    assert.equal(needsMediaRelay(undefined, phone), false);
  });
});

// RFC 3261 §21.4.26: 488 "only applies to the specific resource addressed by the Request-URI
// and the request may succeed elsewhere" — here, at a contact of the same profile.
describe("the proxy between browsers and plain phones", () => {
  let proxy: Proxy;
  let baseline: Record<string, number>;
  let target: SendTarget;
  const phones: SipPhone[] = [];
  const phone = async (user: string, contact?: string) => {
    const p = await SipPhone.start({ user, ...(contact === undefined ? {} : { contact }) });
    phones.push(p);
    return p;
  };

  before(async () => {
    baseline = await openHandles();
    proxy = new Proxy({
      id: "p1",
      domains: [DOMAIN],
      listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
      allowedDestinations: LOOPBACK,
      auth: { enabled: false },
      http: { address: "127.0.0.1", port: 0 },
      timers: { t1Ms: 20, t2Ms: 160, t4Ms: 200, tryingDelayMs: 200 },
    });
    await proxy.start();
    const l = proxy.listeners[0]!;
    target = { protocol: "udp", address: l.address, port: l.port };
  });

  after(async () => {
    for (const p of phones) await p.stop();
    await proxy.stop();
    assert.deepEqual(await openHandles(), baseline, "nothing left open");
  });

  async function call(from: SipPhone, user: string, sdp: string) {
    const request = newRequest("INVITE", `sip:${user}@${DOMAIN}`, {
      headers: [["Contact", `<${from.contactUri()}>`]],
    });
    request.setBody(sdp, "application/sdp");
    return from.send(request, target).final;
  }

  test("a browser's offer to a plain phone, and a plain offer to a browser: 488 with a Warning", async () => {
    // A browser-like client: a WebSocket Contact (JsSIP's shape); its flow here is UDP.
    const web = await phone("webby", `sip:k2j3@a8d9.invalid;transport=ws`);
    assert.equal((await web.register(target)).status, 200);
    const plain = await phone("carol");
    assert.equal((await plain.register(target)).status, 200);

    for (const [caller, callee, sdp] of [
      [web, "carol", WEBRTC_SDP],
      [plain, "webby", PLAIN_SDP],
    ] as const) {
      const response = await call(caller, callee, sdp);
      assert.equal(response.status, 488);
      assert.equal(response.reason, MEDIA_RELAY_MISSING_REASON);
      assert.equal(response.getHeader("warning"), `302 p1 "${MEDIA_RELAY_MISSING}"`);
    }
    assert.equal(plain.requestsOf("INVITE").length, 0, "not forked to the phone");
    assert.equal(web.requestsOf("INVITE").length, 0, "not forked to the browser");
    assert.equal(proxy.calls, 0);
  });

  test("an AOR with a browser and a phone: each offer goes only to the contact of its profile", async () => {
    const web = await phone("dave", `sip:dave1@b7c8.invalid;transport=ws`);
    const desk = await phone("dave");
    assert.equal((await web.register(target)).status, 200);
    assert.equal((await desk.register(target)).status, 200);
    const caller = await phone("alice");

    assert.equal((await call(caller, "dave", WEBRTC_SDP)).status, 200);
    assert.equal(web.requestsOf("INVITE").length, 1);
    assert.equal(desk.requestsOf("INVITE").length, 0);

    assert.equal((await call(caller, "dave", PLAIN_SDP)).status, 200);
    assert.equal(web.requestsOf("INVITE").length, 1);
    assert.equal(desk.requestsOf("INVITE").length, 1);
  });
});
