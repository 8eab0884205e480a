import type { SipMessage } from "./message.js";

/**
 * The message as bytes for any transport: the inverse of parseDatagram and the stream
 * framer. Unchanged lines of a parsed message are copied from its source byte for byte.
 */
export function serializeMessage(message: SipMessage): Buffer {
  return message.toBuffer();
}
