/** The message the codec benchmarks use. */
// An INVITE with SDP as a softphone (baresip here) sends it, about 660 bytes.
const SDP = [
  "v=0",
  "o=- 1830937112 3458206581 IN IP4 192.168.1.20",
  "s=-",
  "c=IN IP4 192.168.1.20",
  "t=0 0",
  "m=audio 10000 RTP/AVP 0 8 101",
  "a=rtpmap:0 PCMU/8000",
  "a=rtpmap:8 PCMA/8000",
  "a=rtpmap:101 telephone-event/8000",
  "a=fmtp:101 0-15",
  "",
].join("\r\n");
export const INVITE = Buffer.from(
  [
    "INVITE sip:bob@sipsteer.test SIP/2.0",
    "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK2b4c1ad8e3f0a95d;rport",
    "Contact: <sip:alice@192.168.1.20:5060;transport=udp>",
    "Max-Forwards: 70",
    "To: <sip:bob@sipsteer.test>",
    'From: "Alice" <sip:alice@sipsteer.test>;tag=7a1c0ffee3d1b2a4',
    "Call-ID: 5f0a3c1ee9b2d7a8",
    "CSeq: 21418 INVITE",
    "User-Agent: baresip v3.10.1",
    "Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,INFO,UPDATE",
    "Content-Type: application/sdp",
    `Content-Length: ${Buffer.byteLength(SDP)}`,
    "",
    SDP,
  ].join("\r\n"),
  "latin1",
);
