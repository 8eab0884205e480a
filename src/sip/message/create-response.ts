import { SipResponse, type SipRequest } from "./message.js";

const COPIED = ["via", "from", "to", "call-id", "cseq"];

/**
 * A response to `request` (RFC 3261 §8.2.6.2): Via, From, To, Call-ID and CSeq copied in
 * order, the To tag added when given and the request had none (not for 100 Trying).
 */
export function createResponse(
  request: SipRequest,
  status: number,
  options: { reason?: string; toTag?: string } = {},
): SipResponse {
  const response = new SipResponse(
    { status, ...(options.reason === undefined ? {} : { reason: options.reason }) },
    request.limits,
  );
  for (const f of request.fields) if (COPIED.includes(f.key)) response.fields.push(f);
  if (options.toTag !== undefined && status > 100 && request.to.tag === undefined) {
    response.setHeader("To", `${request.getHeader("to")!};tag=${options.toTag}`);
  }
  response.setHeader("Content-Length", "0");
  return response;
}
