import {
  AudioStream,
  DEFAULT_TELEPHONE_EVENT_PT,
  DEFAULT_VP8_PT,
  SdpError,
  VideoStream,
  WavRecorder,
  answerOffer,
  buildOffer,
  openAudioSource,
  readAnswer,
  readDescription,
  type AudioSource,
  type AudioStreamSummary,
  type LocalMedia,
  type NegotiatedStream,
  type VideoStreamStats,
} from "../media/index.js";
import type { Clock, Logger } from "../sip/index.js";
import { MediaRejectedError } from "./errors.js";
import type { MediaSession } from "./media-session.js";

export interface RtpMediaOptions {
  /** The address the RTP sockets bind and the SDP names (an IP literal). */
  readonly localAddress: string;
  /**
   * The address the SDP names instead of `localAddress`: what a phone behind NAT writes (its
   * private address), which only a relay that latches onto the real source gets past.
   */
  readonly advertiseAddress?: string;
  readonly allowedDestinations: readonly string[];
  /** What to send: `tone:HZ`, `silence` or a WAV file; silence when absent. */
  readonly play?: string;
  /** A WAV file to record what is heard into. */
  readonly recordPath?: string;
  /**
   * Offer or accept VP8 video (RFC 7741): `play` an IVF file (looped for the call), `record`
   * what arrives into another. Either may be left out.
   */
  readonly video?: { readonly play?: string; readonly record?: string };
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
  #video: VideoStream | undefined;
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

  /** The video figures, when a video stream ran. */
  videoStats(): VideoStreamStats | undefined {
    return this.#video?.stats;
  }

  async localOffer(): Promise<string> {
    const local = await this.#open();
    return buildOffer(await this.#withVideo(local, DEFAULT_VP8_PT));
  }

  async answerFor(remoteOffer: string): Promise<string> {
    const local = await this.#open();
    try {
      // The video stream sends the offerer's VP8 payload type, so it starts once that is read.
      const vp8 = readDescription(remoteOffer)
        .streams.find((m) => m.kind === "video" && !m.rejected)
        ?.codecs.find((c) => c.name.toUpperCase() === "VP8");
      const answer = answerOffer(
        remoteOffer,
        vp8 === undefined ? local : await this.#withVideo(local, vp8.payloadType),
      );
      if (answer.audio === undefined) throw new SdpError("no-common-codec", "no audio accepted");
      this.#use(answer.audio);
      this.#useVideo(answer.video);
      return answer.sdp;
    } catch (e) {
      if (e instanceof SdpError)
        throw new MediaRejectedError(e.message, { status: e.status, cause: e });
      throw e;
    }
  }

  async acceptAnswer(remoteAnswer: string): Promise<void> {
    const local = await this.#open();
    const { audio, video } = readAnswer(remoteAnswer, local);
    if (audio === undefined) throw new SdpError("no-common-codec", "the answer has no audio");
    this.#use(audio);
    this.#useVideo(video);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#stream?.stop();
    await this.#video?.stop();
    await this.#recorder?.close();
  }

  /** Starts the video stream (when asked for) and adds its port to what we offer or answer. */
  async #withVideo(local: LocalMedia, payloadType: number): Promise<LocalMedia> {
    const o = this.#o;
    if (o.video === undefined) return local;
    if (this.#video === undefined) {
      this.#video = new VideoStream(
        {
          localAddress: o.localAddress,
          payloadType,
          ...(o.video.play === undefined ? {} : { send: { file: o.video.play, loop: true } }),
          ...(o.video.record === undefined ? {} : { record: o.video.record }),
          symmetricRtp: o.symmetric ?? true,
          allowedDestinations: [...o.allowedDestinations],
        },
        {
          ...(o.clock === undefined ? {} : { clock: o.clock }),
          ...(o.logger === undefined ? {} : { logger: o.logger }),
        },
      );
      await this.#video.start();
    }
    const withVideo = { ...local, videoPort: this.#video.local.port, vp8Pt: payloadType };
    this.#local = withVideo;
    return withVideo;
  }

  #useVideo(video: NegotiatedStream | undefined): void {
    if (video === undefined || this.#video === undefined) return;
    this.#video.setRemote({
      address: video.remote.address,
      port: video.remote.port,
      rtcpPort: video.rtcpMux ? video.remote.port : video.remote.rtcpPort,
    });
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
      telephoneEventPt: DEFAULT_TELEPHONE_EVENT_PT,
      symmetric: o.symmetric ?? true,
      source: this.#source,
      ...(this.#recorder === undefined ? {} : { sink: this.#recorder }),
      allowedDestinations: o.allowedDestinations,
      ...(o.clock === undefined ? {} : { clock: o.clock }),
      ...(o.logger === undefined ? {} : { logger: o.logger }),
    });
    const { rtpPort } = await this.#stream.start();
    // Our RTCP is on the next port: no rtcp-mux (RFC 5761), offered or answered.
    this.#local = {
      address: o.advertiseAddress ?? o.localAddress,
      audioPort: rtpPort,
      rtcpMux: false,
    };
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
