// One VP8 video stream over RTP (RFC 3550, RFC 7741): sends the frames of an IVF file at its
// own pace, receives, reassembles and records what arrives into an IVF file, and counts.
import { randomBytes, randomInt } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { isIP } from "node:net";
import { z } from "zod";
import {
  DEFAULT_ALLOWED_DESTINATIONS,
  DestinationPolicy,
  silentLogger,
  systemClock,
  type Clock,
  type ClockTimer,
  type Logger,
} from "../../sip/index.js";
import {
  ntpMiddle32,
  ntpTimestamp,
  readRtcpCompound,
  writeRtcpCompound,
  type ReceiverReport,
  type RtcpPacket,
  type SenderReport,
} from "../rtcp.js";
import { isRtcp, readRtpPacket, writeRtpPacket } from "../rtp-packet.js";
import { DEFAULT_VP8_PT } from "../sdp.js";
import { ReceiverStats, SenderStats } from "../stream-stats.js";
import { IvfWriter, readIvfFile, type IvfFrame } from "./ivf.js";
import { readPictureLossIndications, writePictureLossRequest } from "./rtcp-feedback.js";
import {
  Vp8Depacketizer,
  Vp8Packetizer,
  isVp8Keyframe,
  vp8KeyframeSize,
  type Vp8Frame,
} from "./vp8-payload.js";

/** RFC 7741 §6.1: "The clock rate MUST be 90000". */
export const VP8_CLOCK_RATE = 90_000;
/** A datagram this size crosses common paths (tunnels included) without fragmenting. */
export const DEFAULT_VIDEO_MTU_BYTES = 1200;
/**
 * RFC 3550 §6.2: "The RECOMMENDED value for a fixed minimum interval is 5 seconds"; each
 * interval is drawn from 0.5–1.5 times it (§6.3.1) so that streams do not report in step.
 */
export const DEFAULT_VIDEO_RTCP_INTERVAL_MS = 5000;
/** At most one PLI this often while a key frame is awaited (RFC 4585 leaves the pace open). */
export const DEFAULT_PLI_INTERVAL_MS = 500;
/** IPv6 (40) + UDP (8) + RTP (12): what the MTU must leave for headers. */
const HEADER_OVERHEAD_BYTES = 60;
/** Tries to find a free even port with its odd neighbour free too (RFC 3550 §11). */
const PORT_PAIR_TRIES = 32;

const ipAddress = z.string().refine((s) => isIP(s) !== 0, "not an IP address");
const port = z.number().int().min(1).max(65535);
const cidr = z.string().refine((s) => {
  try {
    new DestinationPolicy([s]);
    return true;
  } catch {
    return false;
  }
}, "not a CIDR block");

/** Where a stream sends: RTP to `port`, RTCP to `rtcpPort` (port + 1, or `port` when muxed). */
export const videoRemoteSchema = z.object({
  address: ipAddress,
  port,
  rtcpPort: port.optional(),
});

export const videoStreamOptionsSchema = z.object({
  /** The address to bind (and receive on). */
  localAddress: ipAddress,
  /** RTP port; RTCP takes the next one unless `rtcpMux`. 0 picks a free (even) pair. */
  localPort: z.number().int().min(0).max(65535).default(0),
  /** RTP and RTCP share one port (RFC 5761). */
  rtcpMux: z.boolean().default(false),
  /** The peer, from its SDP; may come later through setRemote(), or by latching. */
  remote: videoRemoteSchema.optional(),
  /** The payload type sent (the peer's, from its SDP). */
  payloadType: z.number().int().min(0).max(127).default(DEFAULT_VP8_PT),
  /** The payload type taken on receiving; `payloadType` when absent. */
  receivePayloadType: z.number().int().min(0).max(127).optional(),
  /** Our SSRC; random when absent (RFC 3550 §8). */
  ssrc: z.number().int().min(0).max(0xffffffff).optional(),
  /** RTCP CNAME (RFC 3550 §6.5.1); random when absent. */
  cname: z.string().min(1).max(255).optional(),
  /** An IVF (VP8) file to send. */
  send: z
    .object({
      file: z.string().min(1),
      /** Start over at the end, until stop(); otherwise sending ends with the file. */
      loop: z.boolean().default(false),
    })
    .optional(),
  /** An IVF file to record the received frames into (from the first key frame on). */
  record: z.string().min(1).optional(),
  /** Send to where the peer's RTP (and RTCP) come from (symmetric RTP, RFC 4961), for NAT. */
  symmetricRtp: z.boolean().default(false),
  /** CIDR blocks every send must fall in (DESIGN.md); everywhere unless narrowed, as SIP's. */
  allowedDestinations: z.array(cidr).default([...DEFAULT_ALLOWED_DESTINATIONS]),
  /** Largest IP datagram to send; the VP8 payload gets what headers leave. */
  mtu: z
    .number()
    .int()
    .min(HEADER_OVERHEAD_BYTES + 5)
    .max(65_535)
    .default(DEFAULT_VIDEO_MTU_BYTES),
  /** Ask for a key frame with RTCP PLI (RFC 4585) after loss. */
  pli: z.boolean().default(true),
  pliIntervalMs: z.number().int().positive().default(DEFAULT_PLI_INTERVAL_MS),
  /** Mean time between RTCP reports (SR when we send, else RR); a BYE goes at stop(). */
  rtcpIntervalMs: z.number().int().positive().default(DEFAULT_VIDEO_RTCP_INTERVAL_MS),
});

export type VideoStreamOptionsInput = z.input<typeof videoStreamOptionsSchema>;
export type VideoStreamOptions = z.output<typeof videoStreamOptionsSchema>;
export type VideoRemote = z.output<typeof videoRemoteSchema>;

/** Validates and freezes; a bad field throws naming its path. */
export function parseVideoStreamOptions(input: unknown): Readonly<VideoStreamOptions> {
  const result = videoStreamOptionsSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new RangeError(`video stream: ${issue.path.join(".") || "(options)"}: ${issue.message}`);
  }
  return Object.freeze(result.data);
}

export interface VideoStreamDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Epoch ms, for the NTP timestamps of sender reports; Date.now by default. */
  readonly wallNow?: () => number;
  /** Uniform in [0, 1), for the RTCP interval's spread; Math.random by default. */
  readonly random?: () => number;
}

export interface VideoStreamStats {
  sentPackets: number;
  sentFrames: number;
  sentBytes: number;
  sentKeyframes: number;
  /** RTP packets of our payload type taken in. */
  receivedPackets: number;
  /** Whole frames reassembled. */
  receivedFrames: number;
  receivedBytes: number;
  receivedKeyframes: number;
  /** RFC 3550 A.3: packets expected minus received (0 when duplicates make it negative). */
  lost: number;
  /** RFC 3550 A.8 interarrival jitter, in milliseconds. */
  jitterMs: number;
  /** Frames begun but never whole (a packet lost), unfinished ones at stop() included. */
  framesDropped: number;
  /** Frames written to the recording. */
  recordedFrames: number;
  pliSent: number;
  /** Counted only: a file cannot make a key frame on demand (see VideoStream). */
  pliReceived: number;
  /** Datagrams that were not RTP/RTCP, not our payload type, or had a damaged descriptor. */
  discarded: number;
  /** Sends the allowedDestinations list refused. */
  refusedSends: number;
  sendErrors: number;
  /** RTCP compound packets sent (reports, PLIs, the BYE) and received. */
  rtcpSent: number;
  rtcpReceived: number;
}

interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * One VP8 stream over RTP. `start()` binds the RTP socket (and RTCP on port + 1, unless
 * muxed), opens the recording and begins sending the IVF file paced by the clock: each frame
 * leaves at its pts, with the RTP timestamp its pts in 90 kHz, packetized by RFC 7741;
 * looping, each round goes on from where the last ended. Frames due while there is nowhere to
 * send yet (no remote, nothing latched) are skipped; the timeline goes on. `stop()` sends an
 * RTCP BYE, clears the timers, closes the sockets and finishes the recording (its frame count
 * fixed).
 *
 * A received PLI is counted but cannot be honoured: the frames come from a file, so the next
 * key frame is the file's next one (with ffmpeg's `-g 25`, within a second).
 */
export class VideoStream {
  readonly options: Readonly<VideoStreamOptions>;
  readonly ssrc: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #policy: DestinationPolicy;
  readonly #cname: string;
  readonly #packetizer: Vp8Packetizer;
  readonly #depacketizer = new Vp8Depacketizer();
  readonly #wallNow: () => number;
  readonly #random: () => number;
  readonly #receiver = new ReceiverStats({ clockRate: VP8_CLOCK_RATE });
  readonly #sender = new SenderStats();
  readonly #stats: Omit<VideoStreamStats, "lost" | "jitterMs" | "framesDropped"> = {
    sentPackets: 0,
    sentFrames: 0,
    sentBytes: 0,
    sentKeyframes: 0,
    receivedPackets: 0,
    receivedFrames: 0,
    receivedBytes: 0,
    receivedKeyframes: 0,
    recordedFrames: 0,
    pliSent: 0,
    pliReceived: 0,
    discarded: 0,
    refusedSends: 0,
    sendErrors: 0,
    rtcpSent: 0,
    rtcpReceived: 0,
  };
  #rtp: Socket | undefined;
  #rtcp: Socket | undefined;
  #local: { address: string; port: number; rtcpPort: number } | undefined;
  #remoteRtp: Endpoint | undefined;
  #remoteRtcp: Endpoint | undefined;
  #latched = false;
  #remoteSsrc: number | undefined;
  #state: "new" | "started" | "stopped" = "new";

  // Sending.
  #frames: readonly IvfFrame[] = [];
  #frameIndex = 0;
  /** Seconds per pts unit of the file being sent. */
  #ptsSeconds = 0;
  #roundSeconds = 0;
  #round = 0;
  #sendStartMs = 0;
  #timestampBase = 0;
  #sequence = 0;
  #timer: ClockTimer | undefined;
  #rtcpTimer: ClockTimer | undefined;
  #sendDone: Promise<void> = Promise.resolve();
  #resolveSendDone: (() => void) | undefined;

  // Receiving.
  #recorder: IvfWriter | undefined;
  #recordSizeKnown = false;
  #recordFirstTimestamp: number | undefined;
  #recordLastTimestamp = 0;
  #recordPts = 0n;
  #lastPliMs: number | undefined;
  #droppedAtLastCheck = 0;
  #refusedLogged = new Set<string>();

  constructor(
    options: VideoStreamOptionsInput | Readonly<VideoStreamOptions>,
    deps: VideoStreamDeps = {},
  ) {
    this.options = parseVideoStreamOptions(options);
    this.#clock = deps.clock ?? systemClock;
    this.#wallNow = deps.wallNow ?? Date.now;
    this.#random = deps.random ?? Math.random;
    this.#log = (deps.logger ?? silentLogger).child({ component: "video-stream" });
    this.#policy = new DestinationPolicy(this.options.allowedDestinations);
    this.ssrc = this.options.ssrc ?? randomBytes(4).readUInt32BE(0);
    this.#cname = this.options.cname ?? `${randomBytes(8).toString("hex")}@sipsteer`;
    this.#packetizer = new Vp8Packetizer({
      maxPayloadBytes: this.options.mtu - HEADER_OVERHEAD_BYTES,
    });
    if (this.options.remote !== undefined) this.setRemote(this.options.remote);
  }

  /** The bound RTP port and RTCP port (the same when muxed), from start() on. */
  get local(): { address: string; port: number; rtcpPort: number } {
    if (this.#local === undefined) throw new Error("video stream not started");
    return this.#local;
  }

  /** Where RTP goes now (from options, setRemote() or latching). */
  get remote(): VideoRemote | undefined {
    if (this.#remoteRtp === undefined) return undefined;
    return { ...this.#remoteRtp, rtcpPort: this.#remoteRtcp?.port };
  }

  get stats(): VideoStreamStats {
    return {
      ...this.#stats,
      lost: Math.max(0, this.#receiver.snapshot().lost),
      jitterMs: this.#receiver.snapshot().jitterMs,
      framesDropped: this.#depacketizer.stats.framesDropped,
    };
  }

  /** Sets the peer (from its SDP answer or offer); latching may move it later. */
  setRemote(remote: VideoRemote): void {
    const parsed = videoRemoteSchema.safeParse(remote);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new RangeError(`video stream: remote.${issue.path.join(".")}: ${issue.message}`);
    }
    const r = parsed.data;
    this.#remoteRtp = { address: r.address, port: r.port };
    this.#remoteRtcp = {
      address: r.address,
      port: r.rtcpPort ?? (this.options.rtcpMux ? r.port : r.port + 1),
    };
  }

  /** Resolves when the file has been sent to its end (never, while looping, before stop()). */
  whenSent(): Promise<void> {
    return this.#sendDone;
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error(`video stream cannot start when ${this.#state}`);
    this.#state = "started";
    const o = this.options;
    try {
      if (o.send !== undefined) {
        const file = await readIvfFile(o.send.file);
        this.#prepareSending(
          file.frames,
          file.header.timebaseNumerator / file.header.timebaseDenominator,
        );
      }
      await this.#bind();
      const rtp = this.#rtp!.address();
      this.#local = Object.freeze({
        address: rtp.address,
        port: rtp.port,
        rtcpPort: this.#rtcp?.address().port ?? rtp.port,
      });
      if (o.record !== undefined) {
        // 0x0 until the first key frame tells the size (fixed then, in place).
        this.#recorder = await IvfWriter.create(o.record, {
          width: 0,
          height: 0,
          timebaseDenominator: VP8_CLOCK_RATE,
          timebaseNumerator: 1,
        });
      }
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.#sendStartMs = this.#clock.now();
    if (this.#frames.length > 0) {
      this.#sendDone = new Promise((resolve) => (this.#resolveSendDone = resolve));
      this.#sendNext();
    }
    this.#scheduleReport();
    this.#log.info({ local: this.local, remote: this.remote }, "video stream started");
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    const wasStarted = this.#state === "started";
    this.#state = "stopped";
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    if (this.#rtcpTimer !== undefined) this.#clock.clearTimeout(this.#rtcpTimer);
    this.#timer = undefined;
    this.#rtcpTimer = undefined;
    // RFC 3550 §6.3.7: a participant that leaves sends a BYE.
    if (wasStarted) await this.#sendReport(true);
    this.#finishSending();
    this.#depacketizer.flush();
    const sockets = [this.#rtp, this.#rtcp].filter((s): s is Socket => s !== undefined);
    this.#rtp = undefined;
    this.#rtcp = undefined;
    await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    const recorder = this.#recorder;
    this.#recorder = undefined;
    if (recorder !== undefined) await recorder.close();
    this.#log.info({ stats: this.stats }, "video stream stopped");
  }

  async #bind(): Promise<void> {
    const { localAddress, localPort, rtcpMux } = this.options;
    if (rtcpMux) {
      this.#rtp = await this.#open(localAddress, localPort);
      return;
    }
    if (localPort !== 0) {
      this.#rtp = await this.#open(localAddress, localPort);
      this.#rtcp = await this.#open(localAddress, localPort + 1);
      return;
    }
    for (let i = 0; i < PORT_PAIR_TRIES; i++) {
      const rtp = await this.#open(localAddress, 0);
      const rtpPort = rtp.address().port;
      if (rtpPort % 2 === 0 && rtpPort < 65535) {
        try {
          this.#rtcp = await this.#open(localAddress, rtpPort + 1);
          this.#rtp = rtp;
          return;
        } catch {
          // Taken: try another pair.
        }
      }
      await new Promise<void>((resolve) => rtp.close(() => resolve()));
    }
    throw new Error(`video stream: no free RTP/RTCP port pair on ${localAddress}`);
  }

  #open(address: string, port: number): Promise<Socket> {
    const socket = createSocket(isIP(address) === 6 ? "udp6" : "udp4");
    return new Promise((resolve, reject) => {
      socket.once("error", (error) => {
        try {
          socket.close();
        } catch {
          // Never bound: nothing to close.
        }
        reject(error);
      });
      socket.bind({ address, port, exclusive: true }, () => {
        socket.removeAllListeners("error");
        socket.on("error", (error) => this.#log.warn({ err: error }, "video socket error"));
        socket.on("message", (datagram, from) => this.#receive(datagram, from, socket));
        resolve(socket);
      });
    });
  }

  // Sending.

  #prepareSending(frames: readonly IvfFrame[], ptsSeconds: number): void {
    this.#frames = frames.filter((f) => f.data.length > 0);
    if (this.#frames.length === 0) return;
    this.#ptsSeconds = ptsSeconds;
    const first = Number(this.#frames[0]!.pts);
    const last = Number(this.#frames[this.#frames.length - 1]!.pts);
    const n = this.#frames.length;
    // A round lasts the span of the pts plus one mean frame interval.
    const span = (last - first) * ptsSeconds;
    this.#roundSeconds = n > 1 ? (span * n) / (n - 1) : ptsSeconds;
    this.#timestampBase = randomInt(0, 0x100000000);
    this.#sequence = randomInt(0, 0x10000);
  }

  /** Seconds from the start of sending at which the current frame is due. */
  #frameSeconds(): number {
    const first = Number(this.#frames[0]!.pts);
    const pts = Number(this.#frames[this.#frameIndex]!.pts);
    return Math.max(0, (pts - first) * this.#ptsSeconds) + this.#round * this.#roundSeconds;
  }

  #sendNext(): void {
    this.#timer = undefined;
    if (this.#state !== "started") return;
    const now = this.#clock.now();
    // Send every frame already due (a stalled event loop catches up), then wait for the next.
    for (;;) {
      const dueSeconds = this.#frameSeconds();
      const dueMs = this.#sendStartMs + dueSeconds * 1000;
      if (dueMs > now) {
        this.#timer = this.#clock.setTimeout(() => this.#sendNext(), dueMs - now);
        return;
      }
      this.#sendFrame(
        this.#frames[this.#frameIndex]!.data,
        Math.round(dueSeconds * VP8_CLOCK_RATE),
      );
      this.#frameIndex++;
      if (this.#frameIndex === this.#frames.length) {
        if (this.options.send?.loop !== true) {
          this.#finishSending();
          return;
        }
        this.#frameIndex = 0;
        this.#round++;
      }
    }
  }

  #finishSending(): void {
    this.#resolveSendDone?.();
    this.#resolveSendDone = undefined;
  }

  #sendFrame(frame: Buffer, timestampOffset: number): void {
    const destination = this.#remoteRtp;
    if (destination === undefined) return;
    const timestamp = (this.#timestampBase + timestampOffset) >>> 0;
    let sent = false;
    for (const part of this.#packetizer.packetize(frame)) {
      const datagram = writeRtpPacket({
        payloadType: this.options.payloadType,
        sequence: this.#sequence,
        timestamp,
        ssrc: this.ssrc,
        marker: part.marker,
        payload: part.payload,
      });
      this.#sequence = (this.#sequence + 1) & 0xffff;
      if (!this.#send(this.#rtp, datagram, destination)) return;
      sent = true;
      this.#stats.sentPackets++;
      this.#stats.sentBytes += part.payload.length;
      this.#sender.record(part.payload.length);
    }
    if (!sent) return;
    this.#stats.sentFrames++;
    if (isVp8Keyframe(frame)) this.#stats.sentKeyframes++;
  }

  /** Sends if allowedDestinations permits; false when refused. */
  #send(socket: Socket | undefined, datagram: Buffer, to: Endpoint, onSent?: () => void): boolean {
    if (socket === undefined) return false;
    if (!this.#policy.allows(to.address)) {
      this.#stats.refusedSends++;
      if (!this.#refusedLogged.has(to.address)) {
        this.#refusedLogged.add(to.address);
        this.#log.warn({ to }, "video: destination not in allowedDestinations, not sent");
      }
      return false;
    }
    socket.send(datagram, to.port, to.address, (error) => {
      onSent?.();
      if (error === null || error === undefined) return;
      this.#stats.sendErrors++;
      this.#log.debug({ err: error, to }, "video: send failed");
    });
    return true;
  }

  // Receiving.

  #receive(datagram: Buffer, from: { address: string; port: number }, socket: Socket): void {
    if (this.#state !== "started") return;
    // RFC 5761 §4 tells RTCP apart on a shared port; a peer may mux without saying so.
    if (socket === this.#rtcp || isRtcp(datagram)) {
      this.#receiveRtcp(datagram, from);
      return;
    }
    const packet = readRtpPacket(datagram);
    const payloadType = this.options.receivePayloadType ?? this.options.payloadType;
    if (typeof packet === "string" || packet.payloadType !== payloadType) {
      this.#stats.discarded++;
      return;
    }
    if (this.#remoteSsrc === undefined) this.#remoteSsrc = packet.ssrc;
    else if (packet.ssrc !== this.#remoteSsrc) {
      this.#stats.discarded++;
      return;
    }
    if (this.options.symmetricRtp && !this.#latched) this.#latch(from);
    const arrivalMs = this.#clock.now();
    this.#stats.receivedPackets++;
    this.#receiver.receive({
      sequence: packet.sequence,
      timestamp: packet.timestamp,
      arrivalMs,
      payloadBytes: packet.payload.length,
    });
    const damagedBefore = this.#depacketizer.stats.damaged;
    const frames = this.#depacketizer.push(packet);
    if (this.#depacketizer.stats.damaged !== damagedBefore) this.#stats.discarded++;
    for (const frame of frames) this.#takeFrame(frame);
    this.#maybeAskForKeyframe(frames.length > 0);
  }

  /** RFC 4961: send to where the peer sends from; RTCP on the next port until its own comes. */
  #latch(from: { address: string; port: number }): void {
    if (!this.#policy.allows(from.address)) return;
    this.#latched = true;
    this.#remoteRtp = { address: from.address, port: from.port };
    this.#remoteRtcp = {
      address: from.address,
      port: this.options.rtcpMux ? from.port : from.port + 1,
    };
    this.#log.info({ remote: this.#remoteRtp }, "video: latched to the peer's RTP source");
  }

  #receiveRtcp(datagram: Buffer, from: { address: string; port: number }): void {
    if (this.options.symmetricRtp && this.#latched && this.#policy.allows(from.address)) {
      this.#remoteRtcp = { address: from.address, port: from.port };
    }
    this.#stats.rtcpReceived++;
    const read = readRtcpCompound(datagram);
    if (read.ok) {
      for (const packet of read.packets) {
        // Its NTP time, for the LSR and DLSR of our next report block (RFC 3550 §6.4.1).
        if (packet.type === "sr" && packet.ssrc === this.#remoteSsrc) {
          this.#receiver.noteSenderReport(
            ntpMiddle32(packet.ntpSeconds, packet.ntpFraction),
            this.#clock.now(),
          );
        }
      }
    }
    for (const pli of readPictureLossIndications(datagram)) {
      if (pli.mediaSsrc === this.ssrc) this.#stats.pliReceived++;
    }
  }

  #takeFrame(frame: Vp8Frame): void {
    this.#stats.receivedFrames++;
    this.#stats.receivedBytes += frame.data.length;
    if (frame.keyframe) this.#stats.receivedKeyframes++;
    const recorder = this.#recorder;
    if (recorder === undefined) return;
    if (!this.#recordSizeKnown) {
      const size = vp8KeyframeSize(frame.data);
      // What comes before the first key frame cannot be decoded: not recorded.
      if (size === undefined) return;
      recorder.setSize(size.width, size.height);
      this.#recordSizeKnown = true;
    }
    if (this.#recordFirstTimestamp === undefined) {
      this.#recordFirstTimestamp = frame.timestamp;
      this.#recordLastTimestamp = frame.timestamp;
    }
    // The pts is the RTP timestamp unwrapped, from 0 at the first recorded frame.
    this.#recordPts += BigInt((frame.timestamp - this.#recordLastTimestamp) | 0);
    this.#recordLastTimestamp = frame.timestamp;
    recorder.writeFrame(frame.data, this.#recordPts);
    this.#stats.recordedFrames++;
  }

  #maybeAskForKeyframe(gotFrame: boolean): void {
    const dropped = this.#depacketizer.stats.framesDropped;
    const lostSome = dropped !== this.#droppedAtLastCheck;
    this.#droppedAtLastCheck = dropped;
    if (!this.options.pli || !this.#depacketizer.needsKeyframe || !(lostSome || gotFrame)) return;
    const now = this.#clock.now();
    if (this.#lastPliMs !== undefined && now - this.#lastPliMs < this.options.pliIntervalMs) return;
    if (this.#remoteSsrc === undefined || this.#remoteRtcp === undefined) return;
    this.#lastPliMs = now;
    const request = writePictureLossRequest({
      senderSsrc: this.ssrc,
      mediaSsrc: this.#remoteSsrc,
      cname: this.#cname,
      report: this.#report(now),
    });
    if (this.#send(this.#rtcp ?? this.#rtp, request, this.#remoteRtcp)) {
      this.#stats.pliSent++;
      this.#stats.rtcpSent++;
    }
  }

  // RTCP reports (RFC 3550 §6.4).

  #scheduleReport(): void {
    const delay = this.options.rtcpIntervalMs * (0.5 + this.#random());
    this.#rtcpTimer = this.#clock.setTimeout(() => {
      this.#rtcpTimer = undefined;
      if (this.#state !== "started") return;
      void this.#sendReport(false);
      this.#scheduleReport();
    }, delay);
  }

  /** An SR once we have sent, else an RR; with a block about the peer once it is valid. */
  #report(nowMs: number): SenderReport | ReceiverReport {
    const reports =
      this.#remoteSsrc !== undefined && this.#receiver.valid
        ? [this.#receiver.reportBlock(this.#remoteSsrc, nowMs)]
        : [];
    if (this.#sender.packets === 0) return { type: "rr", ssrc: this.ssrc, reports };
    const ntp = ntpTimestamp(this.#wallNow());
    // The RTP time of this instant on the sending timeline (RFC 3550 §6.4.1).
    const elapsed = Math.round(((nowMs - this.#sendStartMs) * VP8_CLOCK_RATE) / 1000);
    return {
      type: "sr",
      ssrc: this.ssrc,
      ntpSeconds: ntp.seconds,
      ntpFraction: ntp.fraction,
      rtpTimestamp: (this.#timestampBase + elapsed) >>> 0,
      packetCount: this.#sender.packets,
      octetCount: this.#sender.octets,
      reports,
    };
  }

  /** Resolves once the datagram has left (stop() closes the socket after its BYE). */
  #sendReport(bye: boolean): Promise<void> {
    const destination = this.#remoteRtcp;
    if (destination === undefined) return Promise.resolve();
    const packets: RtcpPacket[] = [
      this.#report(this.#clock.now()),
      { type: "sdes", chunks: [{ ssrc: this.ssrc, cname: this.#cname }] },
    ];
    if (bye) packets.push({ type: "bye", ssrcs: [this.ssrc] });
    return new Promise((resolve) => {
      if (this.#send(this.#rtcp ?? this.#rtp, writeRtcpCompound(packets), destination, resolve)) {
        this.#stats.rtcpSent++;
      } else {
        resolve();
      }
    });
  }
}
