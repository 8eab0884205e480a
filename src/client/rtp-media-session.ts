import {
  AudioStream,
  SdpError,
  WavRecorder,
  answerOffer,
  buildOffer,
  openAudioSource,
  readAnswer,
  type AudioSource,
  type AudioStreamSummary,
  type LocalMedia,
  type NegotiatedStream,
} from "../media/index.js";
import type { Clock, Logger } from "../sip/index.js";
import { MediaRejectedError } from "./errors.js";
import type { MediaSession } from "./media-session.js";

export interface RtpMediaOptions {
  /** The address the RTP sockets bind and the SDP names (an IP literal). */
  readonly localAddress: string;
  readonly allowedDestinations: readonly string[];
  /** What to send: `tone:HZ`, `silence` or a WAV file; silence when absent. */
  readonly play?: string;
  /** A WAV file to record what is heard into. */
  readonly recordPath?: string;
  /** Send to where the peer's RTP comes from (NAT); default true. */
  readonly symmetric?: boolean;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/**
 * Plays nothing until the call is answered, so that a file or tone starts with the
 * conversation and not while the phone rings.
 */
class GatedSource implements AudioSource {
  open = false;
  constructor(private readonly inner: AudioSource | undefined) {}

  nextFrame(): Int16Array | undefined {
    return this.open ? this.inner?.nextFrame() : SILENT_FRAME;
  }
}

const SILENT_FRAME = new Int16Array(160);

/**
 * A call's media over RTP (src/media): one G.711 audio stream, offered as PCMU and PCMA with
 * telephone-event, answered with the offer's first common codec (RFC 3264). The stream's
 * sockets open with the first offer or answer; what it plays starts once the peer's SDP is in.
 */
export class RtpMediaSession implements MediaSession {
  readonly #o: RtpMediaOptions;
  #stream: AudioStream | undefined;
  #source: GatedSource | undefined;
  #recorder: WavRecorder | undefined;
  #local: LocalMedia | undefined;
  #negotiated: NegotiatedStream | undefined;
  #stopped = false;

  constructor(options: RtpMediaOptions) {
    this.#o = options;
  }

  /** The codec and peer both sides agreed on, once they have. */
  get negotiated(): NegotiatedStream | undefined {
    return this.#negotiated;
  }

  /** The audio figures for the end-of-call report; undefined when no stream ran. */
  summary(): AudioStreamSummary | undefined {
    return this.#stream?.summary();
  }

  async localOffer(): Promise<string> {
    return buildOffer(await this.#open());
  }

  async answerFor(remoteOffer: string): Promise<string> {
    const local = await this.#open();
    try {
      const answer = answerOffer(remoteOffer, local);
      if (answer.audio === undefined) throw new SdpError("no-common-codec", "no audio accepted");
      this.#use(answer.audio);
      return answer.sdp;
    } catch (e) {
      if (e instanceof SdpError)
        throw new MediaRejectedError(e.message, { status: e.status, cause: e });
      throw e;
    }
  }

  async acceptAnswer(remoteAnswer: string): Promise<void> {
    const local = await this.#open();
    const { audio } = readAnswer(remoteAnswer, local);
    if (audio === undefined) throw new SdpError("no-common-codec", "the answer has no audio");
    this.#use(audio);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#stream?.stop();
    await this.#recorder?.close();
  }

  async #open(): Promise<LocalMedia> {
    if (this.#local !== undefined) return this.#local;
    if (this.#stopped) throw new Error("the media session has ended");
    const o = this.#o;
    const inner = o.play === undefined ? undefined : await openAudioSource(o.play);
    this.#source = new GatedSource(inner);
    if (o.recordPath !== undefined) {
      this.#recorder = new WavRecorder({ path: o.recordPath });
      await this.#recorder.start();
    }
    this.#stream = new AudioStream({
      localAddress: o.localAddress,
      payloadType: 0,
      telephoneEventPt: 101,
      symmetric: o.symmetric ?? true,
      source: this.#source,
      ...(this.#recorder === undefined ? {} : { sink: this.#recorder }),
      allowedDestinations: o.allowedDestinations,
      ...(o.clock === undefined ? {} : { clock: o.clock }),
      ...(o.logger === undefined ? {} : { logger: o.logger }),
    });
    const { rtpPort } = await this.#stream.start();
    // Our RTCP is on the next port: no rtcp-mux (RFC 5761), offered or answered.
    this.#local = { address: o.localAddress, audioPort: rtpPort, rtcpMux: false };
    return this.#local;
  }

  #use(audio: NegotiatedStream): void {
    const stream = this.#stream!;
    this.#negotiated = audio;
    stream.setCodec({
      payloadType: audio.payloadType,
      ...(audio.telephoneEventPt === undefined ? {} : { telephoneEventPt: audio.telephoneEventPt }),
    });
    stream.setRemote({
      address: audio.remote.address,
      port: audio.remote.port,
      rtcpPort: audio.rtcpMux ? audio.remote.port : audio.remote.rtcpPort,
    });
    stream.setDirection({ send: audio.send, receive: audio.receive });
    this.#source!.open = true;
  }
}
