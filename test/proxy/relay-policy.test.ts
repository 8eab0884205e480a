// When the proxy puts a call on the media relay (policy auto/always/never) and with which ng
// flags each side gets what it speaks (issue 8).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  familyOf,
  ngOptionsFor,
  relayReason,
  sdpConnectionAddress,
  sdpStreamCount,
} from "../../src/proxy/media-relay/relay-policy.js";

const plain = (address: string, family = 4) =>
  `v=0\r\nc=IN IP${family} ${address}\r\nm=audio 4000 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n`;
const webrtc =
  "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n";

describe("relay policy", () => {
  test("never relays under never, always under always", () => {
    const offer = { sdp: webrtc, signalledFrom: "127.0.0.1" };
    assert.equal(relayReason("never", offer, { profile: "plain", address: undefined }), undefined);
    assert.equal(
      relayReason(
        "always",
        { sdp: plain("127.0.0.1"), signalledFrom: "127.0.0.1" },
        { profile: "plain", address: "127.0.0.2" },
      ),
      "always",
    );
  });

  test("auto: a browser and a phone, two IP families, or a phone's SDP naming another address", () => {
    const phone = { profile: "plain" as const, address: "127.0.0.2" };
    assert.equal(
      relayReason("auto", { sdp: webrtc, signalledFrom: "127.0.0.1" }, phone),
      "profiles",
    );
    assert.equal(
      relayReason(
        "auto",
        { sdp: plain("127.0.0.1"), signalledFrom: "127.0.0.1" },
        { profile: "webrtc", address: undefined },
      ),
      "profiles",
    );
    assert.equal(
      relayReason("auto", { sdp: plain("::1", 6), signalledFrom: "::1" }, phone),
      "address-family",
    );
    assert.equal(
      relayReason("auto", { sdp: plain("192.168.1.20"), signalledFrom: "127.0.0.1" }, phone),
      "sdp-address",
    );
    // Forwarded by a fleet member: the SDP address cannot be judged here.
    assert.equal(
      relayReason("auto", { sdp: plain("192.168.1.20"), signalledFrom: undefined }, phone),
      undefined,
    );
    assert.equal(
      relayReason("auto", { sdp: plain("127.0.0.1"), signalledFrom: "127.0.0.1" }, phone),
      undefined,
    );
    assert.equal(
      relayReason(
        "auto",
        {
          sdp: plain("::ffff:127.0.0.1".replace("::ffff:", "")),
          signalledFrom: "::ffff:127.0.0.1",
        },
        phone,
      ),
      undefined,
    );
    // Two browsers find each other with ICE.
    assert.equal(
      relayReason(
        "auto",
        { sdp: webrtc, signalledFrom: "127.0.0.1" },
        { profile: "webrtc", address: undefined },
      ),
      undefined,
    );
    // No SDP profile at all (no media): nothing to relay.
    assert.equal(
      relayReason("auto", { sdp: "v=0\r\n", signalledFrom: "127.0.0.1" }, phone),
      undefined,
    );
  });

  test("SDP helpers: the connection address (not 0.0.0.0), active streams, IP families", () => {
    assert.equal(sdpConnectionAddress(plain("127.0.0.9")), "127.0.0.9");
    assert.equal(sdpConnectionAddress(webrtc), undefined);
    assert.equal(sdpConnectionAddress("v=0\r\n"), undefined);
    assert.equal(sdpStreamCount(plain("127.0.0.1")), 1);
    assert.equal(sdpStreamCount(webrtc), 2);
    assert.equal(familyOf("::1"), 6);
    assert.equal(familyOf("[::1]"), 6);
    assert.equal(familyOf("127.0.0.1"), 4);
    assert.equal(familyOf("example.test"), undefined);
    assert.equal(familyOf(undefined), undefined);
  });

  test("ng flags: a browser gets ICE, DTLS-SRTP and rtcp-mux; a phone plain RTP/AVP", () => {
    const toBrowser = ngOptionsFor("webrtc", "offer", "127.0.0.5");
    assert.equal(toBrowser.ice, "force");
    assert.equal(toBrowser.transportProtocol, "UDP/TLS/RTP/SAVPF");
    assert.deepEqual(toBrowser.rtcpMux, ["offer"]);
    assert.deepEqual(toBrowser.sdes, ["off"]);
    assert.deepEqual(toBrowser.flags, ["port-latching", "generate-mid"]);
    assert.equal(toBrowser.receivedFrom, "127.0.0.5");
    assert.deepEqual(ngOptionsFor("webrtc", "answer", undefined).rtcpMux, ["require"]);

    const toPhone = ngOptionsFor("plain", "answer", undefined, 6);
    assert.equal(toPhone.ice, "remove");
    assert.equal(toPhone.dtls, "off");
    assert.equal(toPhone.transportProtocol, "RTP/AVP");
    assert.deepEqual(toPhone.rtcpMux, ["demux"]);
    // Forwarded by a fleet member: the SDP's address is trusted, latching corrects it.
    assert.deepEqual(toPhone.flags, ["trust-address", "port-latching"]);
    assert.equal(toPhone.addressFamily, "IP6");
    assert.deepEqual(toPhone.replace, ["origin", "session-connection"]);
  });
});
