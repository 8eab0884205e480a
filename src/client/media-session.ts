/**
 * What a call needs from its media (RFC 3264 offer/answer), so that the SDK carries SDP without
 * knowing RTP: the media layer (src/media) implements it, tests use a static SDP.
 *
 * One session serves one call. The call drives it thus:
 * - outgoing call: `localOffer()` → INVITE body; the answer from a 183 (early media) or the
 *   2xx → `acceptAnswer()` (once: a later copy is ignored, RFC 3261 §13.2.1);
 * - incoming call with an offer: `answerFor(offer)` → 2xx body; a {@link MediaRejectedError}
 *   thrown here makes the call answer 488 (any other error: 500);
 * - incoming call without an offer (offer in the 2xx): `localOffer()` → 2xx body, the answer
 *   from the ACK → `acceptAnswer()`;
 * - the call ends (BYE either way, CANCEL, rejection, failure): `stop()`, once.
 *
 * Bodies are SDP text (application/sdp). Methods may take their time (opening sockets):
 * the call waits for them.
 */
export interface MediaSession {
  /** An SDP offer for this call. */
  localOffer(): Promise<string>;
  /** The SDP answer to the peer's offer; throws MediaRejectedError when it cannot be met. */
  answerFor(remoteOffer: string): Promise<string>;
  /** The peer's SDP answer to our offer (from a 183 or the 2xx, or from the ACK). */
  acceptAnswer(remoteAnswer: string): Promise<void>;
  /** Ends the media; called once when the call ends, whatever its outcome. */
  stop(): Promise<void>;
}
