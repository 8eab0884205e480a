// The browser phone: a JsSIP user agent over SIP on WebSocket (RFC 7118) registered at the
// proxy the monitor names for `ws` (DESIGN.md "Client query"), with one call at a time carrying
// the camera and microphone (WebRTC: ICE, DTLS-SRTP), kept to loopback candidates.
import { UA } from "jssip";
import type { RTCSession } from "jssip/lib/RTCSession.js";
import type { RTCSessionEvent } from "jssip/lib/UA.js";
import { loopbackOnly } from "./loopback-sdp.js";
import { Md5Socket } from "./md5-socket.js";

export type CallState =
  "idle" | "calling" | "ringing" | "incoming" | "connected" | "ended" | "failed";

/** The proxy the monitor chose (its `/v1/select` answer). */
export interface ChosenProxy {
  readonly proxy: string;
  readonly uri: string;
}

export interface InboundBytes {
  readonly audio: number;
  readonly video: number;
  /** The addresses of the ICE candidate pair that carries the media. */
  readonly pair?: { readonly local: string; readonly remote: string };
}

/** The SDP of the current or last call as sent and as taken (after the loopback filter). */
export interface SessionSdp {
  readonly local: string;
  readonly remote: string;
}

export interface PhoneView {
  readonly localVideo: HTMLVideoElement;
  readonly remoteVideo: HTMLVideoElement;
  /** Called whenever the registration or call state changed. */
  changed(): void;
}

/**
 * No STUN or TURN: host candidates only, and of those only loopback ones are signalled (see
 * loopbackOnly), so that the peer sends to a loopback address. Bundling is offered, not
 * required ("balanced"): the media relay (rtpengine 10.5) answers each m-line on its own
 * transport without a BUNDLE group, which "max-bundle" refuses.
 */
const PC_CONFIG: RTCConfiguration = { iceServers: [], bundlePolicy: "balanced" };

export class Phone {
  #ua: UA | undefined;
  #session: RTCSession | undefined;
  #proxy: ChosenProxy | undefined;
  #registered = false;
  #state: CallState = "idle";
  #cause = "";
  #peer = "";
  #local: MediaStream | undefined;
  #sdp = { local: "", remote: "" };

  constructor(private readonly view: PhoneView) {}

  get state(): CallState {
    return this.#state;
  }

  get registered(): boolean {
    return this.#registered;
  }

  get proxy(): ChosenProxy | undefined {
    return this.#proxy;
  }

  /**
   * Why the last call or registration ended: the final response when one came ("488 Not
   * Acceptable Here (…)"), else JsSIP's cause ("Terminated", "Canceled" …).
   */
  get cause(): string {
    return this.#cause;
  }

  get sdp(): SessionSdp {
    return { ...this.#sdp };
  }

  /** The other party of the current or last call. */
  get peer(): string {
    return this.#peer;
  }

  /** Asks the monitor for a proxy, then registers there; resolves once the 200 came. */
  async register(user: string, password: string, domain: string): Promise<ChosenProxy> {
    this.#ua?.stop();
    this.#registered = false;
    const response = await fetch("/v1/select?transport=ws");
    if (!response.ok) throw new Error(`the monitor has no proxy for ws (${response.status})`);
    const chosen = (await response.json()) as ChosenProxy;
    this.#proxy = { proxy: chosen.proxy, uri: chosen.uri };
    const ua = new UA({
      sockets: [new Md5Socket(chosen.uri)],
      uri: `sip:${user}@${domain}`,
      password,
      register: true,
      session_timers: false,
      user_agent: "sipsteer-phone",
    });
    this.#ua = ua;
    ua.on("newRTCSession", (e: RTCSessionEvent) => this.#adopt(e));
    const done = new Promise<void>((resolve, reject) => {
      ua.on("registered", () => {
        this.#registered = true;
        this.view.changed();
        resolve();
      });
      ua.on("registrationFailed", (e) => {
        this.#cause = e.cause ?? "registration failed";
        this.view.changed();
        reject(new Error(`registration failed: ${this.#cause}`));
      });
    });
    ua.start();
    this.view.changed();
    await done;
    return this.#proxy;
  }

  async call(target: string): Promise<void> {
    const ua = this.#ua;
    if (ua === undefined || !this.#registered) throw new Error("register first");
    if (this.#session !== undefined) throw new Error("a call is going on");
    const mediaStream = await this.#media();
    ua.call(target, { mediaStream, pcConfig: PC_CONFIG });
  }

  async answer(): Promise<void> {
    const session = this.#session;
    if (session === undefined || this.#state !== "incoming") throw new Error("no incoming call");
    const mediaStream = await this.#media();
    session.answer({ mediaStream, pcConfig: PC_CONFIG });
  }

  reject(): void {
    if (this.#state === "incoming") this.#session?.terminate({ status_code: 486 });
  }

  hangup(): void {
    if (this.#session !== undefined && !this.#session.isEnded()) this.#session.terminate();
  }

  /**
   * Bytes received so far on the call's inbound RTP streams (RTCInboundRtpStreamStats), and
   * the addresses of the ICE candidate pair in use (both loopback, or media left the host).
   */
  async stats(): Promise<InboundBytes> {
    const pc = this.#session?.connection;
    if (pc === undefined) return { audio: 0, video: 0 };
    const reports = new Map<string, RTCStats & Record<string, unknown>>();
    (await pc.getStats()).forEach((r: RTCStats & Record<string, unknown>) => reports.set(r.id, r));
    const bytes = { audio: 0, video: 0 };
    let pairId: unknown;
    for (const r of reports.values()) {
      if (r.type === "transport") pairId = r.selectedCandidatePairId;
      if (r.type !== "inbound-rtp") continue;
      if (r.kind === "audio" || r.kind === "video") bytes[r.kind] += Number(r.bytesReceived ?? 0);
    }
    const pair = reports.get(String(pairId));
    const address = (id: unknown) => String(reports.get(String(id))?.address ?? "");
    return pair === undefined
      ? bytes
      : {
          ...bytes,
          pair: { local: address(pair.localCandidateId), remote: address(pair.remoteCandidateId) },
        };
  }

  /** Local camera and microphone, asked once and kept for the next calls. */
  async #media(): Promise<MediaStream> {
    this.#local ??= await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    this.view.localVideo.srcObject = this.#local;
    return this.#local;
  }

  #adopt(e: RTCSessionEvent): void {
    const session = e.session;
    if (this.#session !== undefined && !this.#session.isEnded()) {
      // One call at a time: a second caller hears busy.
      if (e.originator === "remote") session.terminate({ status_code: 486 });
      return;
    }
    this.#session = session;
    this.#peer = session.remote_identity.uri.toString();
    this.#cause = "";
    this.#set(e.originator === "remote" ? "incoming" : "calling");
    // The SDP we send and the SDP we take: loopback candidates only.
    this.#sdp = { local: "", remote: "" };
    session.on("sdp", (s) => {
      s.sdp = loopbackOnly(s.sdp);
      this.#sdp[s.originator === "local" ? "local" : "remote"] = s.sdp;
    });
    session.on("peerconnection", ({ peerconnection }) => {
      peerconnection.addEventListener("track", (t: RTCTrackEvent) => {
        const stream = t.streams[0];
        if (stream !== undefined) this.view.remoteVideo.srcObject = stream;
      });
    });
    session.on("progress", () => {
      if (this.#state === "calling") this.#set("ringing");
    });
    session.on("confirmed", () => this.#set("connected"));
    session.on("ended", (end) => this.#over("ended", end.cause));
    session.on("failed", (end) => {
      // A final response names why better than JsSIP's cause ("488 Not Acceptable Here …").
      const m = end.message as { status_code?: number; reason_phrase?: string } | null;
      const status = end.originator === "remote" ? m?.status_code : undefined;
      this.#over("failed", status === undefined ? end.cause : `${status} ${m?.reason_phrase}`);
    });
  }

  #over(state: CallState, cause: string): void {
    this.#cause = cause;
    this.#session = undefined;
    this.view.remoteVideo.srcObject = null;
    this.#set(state);
  }

  #set(state: CallState): void {
    this.#state = state;
    this.view.changed();
  }
}
