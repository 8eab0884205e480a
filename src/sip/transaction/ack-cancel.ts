import { HeaderField, SipRequest, type SipMessage, type SipResponse } from "../message/index.js";

/** Copies the fields with these keys, in order (fields are immutable, so shared). */
function copyFields(from: SipMessage, to: SipRequest, key: string): void {
  for (const f of from.fields) if (f.key === key) to.fields.push(f);
}

/** The INVITE's top Via value alone, as a field. */
function topViaField(invite: SipRequest): HeaderField {
  return new HeaderField("Via", "via", invite.firstValueText("via")!);
}

/**
 * The ACK a client transaction sends for a non-2xx final response (RFC 3261 §17.1.1.3): the
 * INVITE's Request-URI, Call-ID, From, CSeq number and top Via (so that it matches the same
 * server transaction), the response's To (with its tag), the INVITE's Route set.
 */
export function ackForNon2xx(invite: SipRequest, response: SipResponse): SipRequest {
  const ack = new SipRequest({ method: "ACK", uri: invite.uri }, invite.limits);
  ack.fields.push(topViaField(invite));
  ack.appendHeader("Max-Forwards", "70");
  copyFields(invite, ack, "from");
  copyFields(response, ack, "to");
  copyFields(invite, ack, "call-id");
  ack.appendHeader("CSeq", `${invite.cseq.seq} ACK`);
  copyFields(invite, ack, "route");
  ack.appendHeader("Content-Length", "0");
  return ack;
}

/**
 * A CANCEL for `invite` (RFC 3261 §9.1): the same Request-URI, Call-ID, To, From, CSeq
 * number and Route set, and only the INVITE's top Via, so that it matches the INVITE's
 * server transaction downstream (§9.2).
 */
export function createCancel(invite: SipRequest, reason?: string): SipRequest {
  const cancel = new SipRequest({ method: "CANCEL", uri: invite.uri }, invite.limits);
  cancel.fields.push(topViaField(invite));
  cancel.appendHeader("Max-Forwards", "70");
  copyFields(invite, cancel, "from");
  copyFields(invite, cancel, "to");
  copyFields(invite, cancel, "call-id");
  cancel.appendHeader("CSeq", `${invite.cseq.seq} CANCEL`);
  copyFields(invite, cancel, "route");
  if (reason !== undefined) cancel.appendHeader("Reason", reason);
  cancel.appendHeader("Content-Length", "0");
  return cancel;
}
