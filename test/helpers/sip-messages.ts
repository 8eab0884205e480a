import { SipRequest, createResponse, type SipResponse } from "../../src/sip/index.js";

let counter = 0;

/** An OPTIONS (or other) request without a Via: the transport or transaction layer adds it. */
export function request(
  method = "OPTIONS",
  uri = "sip:bob@127.0.0.1",
  extra: [string, string][] = [],
): SipRequest {
  counter++;
  return new SipRequest({
    method,
    uri,
    headers: [
      ["Max-Forwards", "70"],
      ["From", `<sip:alice@sipsteer.test>;tag=f${counter}`],
      ["To", "<sip:bob@sipsteer.test>"],
      ["Call-ID", `call-${counter}-${process.pid}`],
      ["CSeq", `${counter} ${method}`],
      ...extra,
      ["Content-Length", "0"],
    ],
  });
}

/** A response to `req` with a To tag (not for 100). */
export function respond(req: SipRequest, status: number): SipResponse {
  return createResponse(req, status, { toTag: "uas1" });
}

/** Raw request text with a Via of our choosing, for peers that are not our stack. */
export function rawRequest(via: string, method = "OPTIONS", extra = ""): string {
  counter++;
  return [
    `${method} sip:bob@127.0.0.1 SIP/2.0`,
    `Via: ${via}`,
    "Max-Forwards: 70",
    `From: <sip:alice@sipsteer.test>;tag=r${counter}`,
    "To: <sip:bob@sipsteer.test>",
    `Call-ID: raw-${counter}`,
    `CSeq: 1 ${method}`,
    ...(extra === "" ? [] : [extra]),
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}
