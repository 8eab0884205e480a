// JsSIP 3.13 keeps only the last WWW-Authenticate (and Proxy-Authenticate) of a response and
// answers only MD5; a proxy that offers MD5 and SHA-256, preferred first as RFC 8760 §2.4 has
// it, would leave it with SHA-256 and no registration. This socket hands JsSIP the responses
// with the challenges it cannot answer taken out.
import { WebSocketInterface, type Socket } from "jssip";

const CHALLENGE = /^(www|proxy)-authenticate\s*:/i;
const ALGORITHM = /[\s,]algorithm\s*=\s*"?([A-Za-z0-9-]+)/i;

/** A SIP message with the non-MD5 digest challenges removed when an MD5 one is among them. */
export function md5ChallengesOnly(message: string): string {
  const headEnd = message.indexOf("\r\n\r\n");
  if (headEnd < 0 || !message.startsWith("SIP/2.0 ")) return message;
  const lines = message.slice(0, headEnd).split("\r\n");
  const md5 = (line: string) => (ALGORITHM.exec(line)?.[1] ?? "MD5").toUpperCase() === "MD5";
  const challenges = lines.filter((l) => CHALLENGE.test(l));
  if (challenges.length < 2 || !challenges.some(md5)) return message;
  const kept = lines.filter((l) => !CHALLENGE.test(l) || md5(l));
  return kept.join("\r\n") + message.slice(headEnd);
}

/** JsSIP's WebSocketInterface, with md5ChallengesOnly applied to every text message. */
export class Md5Socket implements Socket {
  readonly #inner: WebSocketInterface;
  onconnect: () => void = () => undefined;
  ondisconnect: (error: boolean, code?: number, reason?: string) => void = () => undefined;
  ondata: <T>(event: T) => void = () => undefined;

  constructor(url: string) {
    this.#inner = new WebSocketInterface(url);
    this.#inner.onconnect = () => this.onconnect();
    this.#inner.ondisconnect = (error, code, reason) => this.ondisconnect(error, code, reason);
    this.#inner.ondata = <T>(data: T) =>
      this.ondata(typeof data === "string" ? md5ChallengesOnly(data) : data);
  }

  get via_transport(): string {
    return this.#inner.via_transport;
  }

  set via_transport(value: string) {
    this.#inner.via_transport = value;
  }

  get url(): string {
    return this.#inner.url;
  }

  get sip_uri(): string {
    return this.#inner.sip_uri;
  }

  connect(): void {
    this.#inner.connect();
  }

  disconnect(): void {
    this.#inner.disconnect();
  }

  send(message: string | ArrayBufferLike | Blob | ArrayBufferView): boolean {
    return this.#inner.send(message);
  }

  isConnected(): boolean {
    return this.#inner.isConnected();
  }

  isConnecting(): boolean {
    return this.#inner.isConnecting();
  }
}
