// The RTP/RTCP session of one audio stream (RFC 3550, RFC 3551 for G.711): it owns its UDP
// sockets (RTP on an even port, RTCP on the next, or both on one with RFC 5761 mux), sends
// 20-ms G.711 frames from a source paced by the clock's shared FramePacer, puts what arrives through the
// jitter buffer into a sink, reports with RTCP SR/RR every ~5 s, says BYE when it stops, carries
// DTMF as RFC 4733 events, and latches onto the peer's source address for NAT (symmetric RTP,
// RFC 4961) when asked. It sends only to destinations `allowedDestinations` permits.
import { randomBytes } from "node:crypto";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { EventEmitter } from "node:events";
import { isIP } from "node:net";
import {
  DestinationPolicy,
  silentLogger,
  systemClock,
  type Clock,
  type ClockTimer,
  type Logger,
} from "../sip/index.js";
import { FRAME_MS, FRAME_SAMPLES, type AudioSource } from "./audio-source.js";
import { DtmfReceiver, DtmfSender, type ReceivedDigit } from "./dtmf.js";
import { g711Decode, g711Encode, g711LawOf, g711Silence, type G711Law } from "./g711.js";
import { FramePacer, type PacedStream } from "./frame-pacer.js";
import { JitterBuffer } from "./jitter-buffer.js";
import { G711_PLC, estimateMos } from "./mos.js";
import {
  ntpMiddle32,
  ntpTimestamp,
  readRtcpCompound,
  writeRtcpCompound,
  type ReportBlock,
  type RtcpPacket,
} from "./rtcp.js";
import { isRtcp, readRtpPacket, writeRtpPacket } from "./rtp-packet.js";
import { ReceiverStats, SenderStats, roundTripMs } from "./stream-stats.js";
import type { AudioSink } from "./wav.js";

export const DEFAULT_RTCP_INTERVAL_MS = 5000;
const CLOCK_RATE = 8000;
const PORT_ATTEMPTS = 50;
/** Enough for 10-ms packets (two a tick) with a concealed one between. */
const MAX_PULLS_PER_TICK = 4;

export interface RemoteEndpoint {
  readonly address: string;
  readonly port: number;
  /** Defaults to port + 1, or port with rtcp-mux. */
  readonly rtcpPort?: number;
}

export interface AudioStreamOptions {
  /** The address to bind (an IP literal); also the family of the sockets. */
  readonly localAddress: string;
  /** An even port to bind, RTCP on the next; 0 or absent picks a free pair. */
  readonly localPort?: number;
  /** G.711: 0 (PCMU) or 8 (PCMA). */
  readonly payloadType: number;
  readonly telephoneEventPt?: number;
  readonly rtcpMux?: boolean;
  /** Where to send; may come later through setRemote(), or from latching. */
  readonly remote?: RemoteEndpoint;
  /** Send to where the peer's RTP comes from once it arrives (NAT). */
  readonly symmetric?: boolean;
  readonly send?: boolean;
  readonly receive?: boolean;
  /** Frames to send; silence when absent or ended. */
  readonly source?: AudioSource;
  /** Where received audio is played. */
  readonly sink?: AudioSink;
  readonly allowedDestinations: readonly string[];
  readonly clock?: Clock;
  /** Wall-clock ms since the epoch, for SR NTP timestamps. */
  readonly wallClock?: () => number;
  readonly rtcpIntervalMs?: number;
  readonly cname?: string;
  readonly jitterMinDelayMs?: number;
  readonly jitterMaxDelayMs?: number;
  readonly logger?: Logger;
}

/** What the peer's reports about our stream say (RFC 3550 §6.4). */
export interface RemoteReceptionReport {
  readonly fractionLost: number;
  readonly cumulativeLost: number;
  readonly jitterMs: number;
  readonly rttMs?: number;
}

export interface AudioStreamStats {
  readonly ssrc: number;
  readonly remoteSsrc?: number;
  readonly sent: number;
  readonly sentOctets: number;
  readonly received: number;
  readonly expected: number;
  readonly lost: number;
  /** Lost of expected, percent. */
  readonly lossPercent: number;
  readonly jitterMs: number;
  readonly late: number;
  readonly duplicates: number;
  readonly concealed: number;
  readonly underruns: number;
  readonly playoutDelayMs: number;
  readonly malformed: number;
  readonly otherPayloads: number;
  /** RTP from another address after latching, dropped. */
  readonly stray: number;
  /** Sends the allowedDestinations list refused. */
  readonly refused: number;
  readonly sendErrors: number;
  readonly dtmfSent: number;
  readonly dtmfReceived: number;
  readonly rtcpSent: number;
  readonly rtcpReceived: number;
  readonly rtcpMalformed: number;
  readonly remoteReport?: RemoteReceptionReport;
  readonly remote?: { readonly address: string; readonly port: number };
}

/** The per-stream figures the CLI prints (issue 6: sent, received, lost, jitter_ms). */
export interface AudioStreamSummary {
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  readonly jitter_ms: number;
  readonly mos: number;
}

export interface AudioStreamEvents {
  dtmf: [ReceivedDigit];
  bye: [reason: string | undefined];
  latched: [{ address: string; port: number }];
}

type Endpoint = { address: string; port: number };

function random32(): number {
  return randomBytes(4).readUInt32BE(0);
}

async function bind(socket: Socket, port: number, address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const onError = (): void => {
      socket.off("listening", onListening);
      resolve(false);
    };
    const onListening = (): void => {
      socket.off("error", onError);
      resolve(true);
    };
    socket.once("error", onError);
    socket.once("listening", onListening);
    socket.bind(port, address);
  });
}

async function closeSocket(socket: Socket): Promise<void> {
  await new Promise<void>((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // never bound or already closed
    }
  });
}

export class AudioStream extends EventEmitter<AudioStreamEvents> {
  readonly ssrc = random32();
  readonly #options: AudioStreamOptions;
  #law: G711Law;
  #payloadType: number;
  #telephoneEventPt: number | undefined;
  readonly #clock: Clock;
  readonly #wallClock: () => number;
  readonly #logger: Logger;
  readonly #allowed: DestinationPolicy;
  readonly #jitter: JitterBuffer;
  readonly #sender = new SenderStats();
  readonly #dtmfOut = new DtmfSender();
  readonly #dtmfIn = new DtmfReceiver();
  readonly #rtcpInterval: number;
  #receiverStats = new ReceiverStats({ clockRate: CLOCK_RATE });
  #rtp: Socket | undefined;
  #rtcp: Socket | undefined;
  #remoteRtp: Endpoint | undefined;
  #remoteRtcp: Endpoint | undefined;
  #latched = false;
  #rtcpLatched = false;
  #remoteSsrc: number | undefined;
  #sequence = random32() & 0xffff;
  #timestamp = random32();
  #firstPacket = true;
  #dtmfTimestamp = 0;
  readonly #pacer: FramePacer;
  readonly #paced: PacedStream = { onFrame: () => this.#onTick() };
  #rtcpTimer: ClockTimer | undefined;
  #running = false;
  #stopping: Promise<void> | undefined;
  #sendEnabled: boolean;
  #receiveEnabled: boolean;
  #counts = {
    malformed: 0,
    otherPayloads: 0,
    stray: 0,
    refused: 0,
    sendErrors: 0,
    dtmfReceived: 0,
    rtcpSent: 0,
    rtcpReceived: 0,
    rtcpMalformed: 0,
  };
  #remoteReport: RemoteReceptionReport | undefined;
  /** Decoded samples not yet played. */
  #pending: Int16Array = new Int16Array(0);
  #lastPacketSamples = FRAME_SAMPLES;
  #silencePayload: Buffer;

  constructor(options: AudioStreamOptions) {
    super();
    const law = g711LawOf(options.payloadType);
    if (law === undefined) {
      throw new RangeError(`audio payload type ${options.payloadType} is not G.711 (0 or 8)`);
    }
    if (isIP(options.localAddress) === 0) {
      throw new RangeError(
        `localAddress ${JSON.stringify(options.localAddress)} is not an IP address`,
      );
    }
    if (options.localPort !== undefined && options.localPort !== 0 && options.localPort % 2 !== 0) {
      throw new RangeError(
        `localPort ${options.localPort} is odd: RTP takes an even port (RFC 3550 §11)`,
      );
    }
    this.#options = options;
    this.#law = law;
    this.#payloadType = options.payloadType;
    this.#telephoneEventPt = options.telephoneEventPt;
    this.#silencePayload = Buffer.alloc(FRAME_SAMPLES, g711Silence(law));
    this.#clock = options.clock ?? systemClock;
    this.#pacer = FramePacer.of(this.#clock);
    this.#wallClock = options.wallClock ?? Date.now;
    this.#logger = (options.logger ?? silentLogger).child({ component: "audio-stream" });
    this.#allowed = new DestinationPolicy(options.allowedDestinations);
    this.#rtcpInterval = options.rtcpIntervalMs ?? DEFAULT_RTCP_INTERVAL_MS;
    this.#jitter = new JitterBuffer({
      clock: this.#clock,
      clockRate: CLOCK_RATE,
      frameMs: FRAME_MS,
      ...(options.jitterMinDelayMs !== undefined ? { minDelayMs: options.jitterMinDelayMs } : {}),
      ...(options.jitterMaxDelayMs !== undefined ? { maxDelayMs: options.jitterMaxDelayMs } : {}),
    });
    this.#sendEnabled = options.send ?? true;
    this.#receiveEnabled = options.receive ?? true;
    if (options.remote !== undefined) this.setRemote(options.remote);
  }

  /** The bound RTP port (after start). */
  get localPort(): number {
    return this.#rtp?.address().port ?? 0;
  }

  /** The bound RTCP port: the RTP port with rtcp-mux. */
  get localRtcpPort(): number {
    return this.#options.rtcpMux === true ? this.localPort : (this.#rtcp?.address().port ?? 0);
  }

  /** Where RTP goes now (from the SDP, or latched). */
  get remote(): Endpoint | undefined {
    return this.#remoteRtp;
  }

  /** Sets where to send (from the remote SDP); a latched address is kept. */
  setRemote(remote: RemoteEndpoint): void {
    if (this.#latched) return;
    this.#remoteRtp = { address: remote.address, port: remote.port };
    const rtcpPort =
      remote.rtcpPort ?? (this.#options.rtcpMux === true ? remote.port : remote.port + 1);
    if (!this.#rtcpLatched) this.#remoteRtcp = { address: remote.address, port: rtcpPort };
  }

  /** Changes the direction (hold and resume, RFC 3264 §8.4). */
  setDirection(options: { send: boolean; receive: boolean }): void {
    this.#sendEnabled = options.send;
    this.#receiveEnabled = options.receive;
  }

  /**
   * The codec the answer chose (RFC 3264): an offer names PCMU and PCMA before the answer says
   * which, and the stream's port must be in the offer, so the stream starts before it knows.
   */
  setCodec(options: { payloadType: number; telephoneEventPt?: number }): void {
    const law = g711LawOf(options.payloadType);
    if (law === undefined) {
      throw new RangeError(`audio payload type ${options.payloadType} is not G.711 (0 or 8)`);
    }
    this.#law = law;
    this.#payloadType = options.payloadType;
    this.#telephoneEventPt = options.telephoneEventPt;
    this.#silencePayload = Buffer.alloc(FRAME_SAMPLES, g711Silence(law));
  }

  /** Binds the sockets and starts sending and playing out. */
  async start(): Promise<{ rtpPort: number; rtcpPort: number }> {
    if (this.#running || this.#rtp !== undefined) throw new Error("AudioStream already started");
    await this.#bindSockets();
    this.#running = true;
    this.#pacer.add(this.#paced);
    // §6.2: "the initial delay ... set to half the minimum interval" for a quicker first report.
    this.#scheduleRtcp(this.#rtcpInterval / 2);
    return { rtpPort: this.localPort, rtcpPort: this.localRtcpPort };
  }

  async #bindSockets(): Promise<void> {
    const type = isIP(this.#options.localAddress) === 6 ? "udp6" : "udp4";
    const address = this.#options.localAddress;
    const mux = this.#options.rtcpMux === true;
    const wanted = this.#options.localPort ?? 0;
    for (let attempt = 0; attempt < (wanted === 0 ? PORT_ATTEMPTS : 1); attempt++) {
      const rtp = createSocket({ type });
      if (!(await bind(rtp, wanted, address))) {
        await closeSocket(rtp);
        continue;
      }
      const port = rtp.address().port;
      if (port % 2 !== 0) {
        await closeSocket(rtp);
        continue;
      }
      let rtcp: Socket | undefined;
      if (!mux) {
        rtcp = createSocket({ type });
        if (!(await bind(rtcp, port + 1, address))) {
          await Promise.all([closeSocket(rtp), closeSocket(rtcp)]);
          continue;
        }
      }
      this.#rtp = rtp;
      this.#rtcp = rtcp;
      rtp.on("message", (data, rinfo) => this.#onRtpSocket(data, rinfo));
      rtp.on("error", (error) => this.#logger.warn({ err: error }, "RTP socket error"));
      rtcp?.on("message", (data, rinfo) => this.#onRtcp(data, rinfo));
      rtcp?.on("error", (error) => this.#logger.warn({ err: error }, "RTCP socket error"));
      return;
    }
    throw new Error(
      wanted === 0
        ? `no free even/odd UDP port pair on ${address} after ${PORT_ATTEMPTS} tries`
        : `cannot bind RTP ${wanted}${mux ? "" : ` and RTCP ${wanted + 1}`} on ${address}`,
    );
  }

  /** Queues DTMF keys to send as RFC 4733 events; throws RangeError for a non-DTMF key. */
  sendDtmf(keys: string, durationMs?: number): void {
    if (this.#telephoneEventPt === undefined) {
      throw new Error("the peer did not negotiate telephone-event: no DTMF can be sent");
    }
    this.#dtmfOut.send(keys, durationMs);
  }

  #onTick(): void {
    this.#sendFrame();
    this.#playOut();
  }

  #sendFrame(): void {
    // The source moves on with time even when nothing is sent (on hold, DTMF, no peer yet).
    const timestamp = this.#timestamp;
    this.#timestamp = (this.#timestamp + FRAME_SAMPLES) >>> 0;
    const dtmfPt = this.#telephoneEventPt;
    const dtmf =
      dtmfPt !== undefined && this.#dtmfOut.busy ? this.#dtmfOut.nextPacket() : undefined;
    const frame = dtmf === undefined ? this.#options.source?.nextFrame() : undefined;
    if (!this.#sendEnabled || this.#remoteRtp === undefined) return;
    let packet: Buffer;
    let payloadBytes: number;
    if (dtmf !== undefined && dtmfPt !== undefined) {
      if (dtmf.startsEvent) this.#dtmfTimestamp = timestamp;
      packet = writeRtpPacket({
        payloadType: dtmfPt,
        sequence: this.#sequence,
        timestamp: this.#dtmfTimestamp,
        ssrc: this.ssrc,
        marker: dtmf.marker,
        payload: dtmf.payload,
      });
      payloadBytes = dtmf.payload.length;
    } else {
      const payload = g711Encode(this.#law, frame ?? new Int16Array(FRAME_SAMPLES));
      packet = writeRtpPacket({
        payloadType: this.#payloadType,
        sequence: this.#sequence,
        timestamp,
        ssrc: this.ssrc,
        // RFC 3551 §4.1: the marker is set on the first packet of a talkspurt.
        marker: this.#firstPacket,
        payload,
      });
      payloadBytes = payload.length;
    }
    this.#firstPacket = false;
    this.#sequence = (this.#sequence + 1) & 0xffff;
    if (this.#send(this.#rtp, packet, this.#remoteRtp)) this.#sender.record(payloadBytes);
  }

  #playOut(): void {
    if (!this.#receiveEnabled) return;
    // Peers may pack 10, 30 or 60 ms in a packet (SIPp's g711a.pcap has 30): decoded samples
    // wait here and the sink gets exactly one 20-ms frame per tick.
    let pulls = 0;
    while (this.#pending.length < FRAME_SAMPLES && pulls++ < MAX_PULLS_PER_TICK) {
      const out = this.#jitter.pull();
      if (out.kind === "silence") {
        if (out.reason === "buffering" && this.#pending.length === 0) return; // nothing heard yet
        this.#appendPending(new Int16Array(FRAME_SAMPLES - this.#pending.length));
        break;
      }
      const payload = out.kind === "frame" ? out.frame.payload : out.payload;
      if (payload !== undefined) {
        this.#lastPacketSamples = payload.length;
        this.#appendPending(g711Decode(this.#law, payload));
      } else {
        this.#appendPending(new Int16Array(this.#lastPacketSamples));
      }
    }
    if (this.#pending.length < FRAME_SAMPLES) {
      this.#appendPending(new Int16Array(FRAME_SAMPLES - this.#pending.length));
    }
    const frame = this.#pending.subarray(0, FRAME_SAMPLES);
    this.#pending = this.#pending.subarray(FRAME_SAMPLES);
    this.#options.sink?.write(frame);
  }

  #appendPending(samples: Int16Array): void {
    if (this.#pending.length === 0) {
      this.#pending = samples;
      return;
    }
    const joined = new Int16Array(this.#pending.length + samples.length);
    joined.set(this.#pending);
    joined.set(samples, this.#pending.length);
    this.#pending = joined;
  }

  #send(socket: Socket | undefined, bytes: Buffer, to: Endpoint): boolean {
    if (socket === undefined) return false;
    if (!this.#allowed.allows(to.address)) {
      if (this.#counts.refused++ === 0) {
        this.#logger.warn(
          { destination: to.address },
          "media destination not in allowedDestinations",
        );
      }
      return false;
    }
    socket.send(bytes, to.port, to.address, (error) => {
      if (error !== null && error !== undefined) this.#counts.sendErrors++;
    });
    return true;
  }

  #onRtpSocket(data: Buffer, rinfo: RemoteInfo): void {
    // RFC 5761 §4: with mux, RTCP arrives here too, told apart by its packet type.
    if (isRtcp(data)) {
      this.#onRtcp(data, rinfo);
      return;
    }
    const packet = readRtpPacket(data);
    if (typeof packet === "string") {
      this.#counts.malformed++;
      return;
    }
    if (this.#options.symmetric === true) {
      if (!this.#latched) {
        if (!this.#allowed.allows(rinfo.address)) {
          this.#counts.stray++;
          return;
        }
        this.#latched = true;
        this.#remoteRtp = { address: rinfo.address, port: rinfo.port };
        if (!this.#rtcpLatched) {
          const port = this.#options.rtcpMux === true ? rinfo.port : rinfo.port + 1;
          this.#remoteRtcp = { address: rinfo.address, port };
        }
        this.#logger.info(
          { address: rinfo.address, port: rinfo.port },
          "latched onto the peer's RTP source",
        );
        this.emit("latched", { address: rinfo.address, port: rinfo.port });
      } else if (
        rinfo.address !== this.#remoteRtp?.address ||
        rinfo.port !== this.#remoteRtp.port
      ) {
        this.#counts.stray++;
        return;
      }
    }
    const isAudio = packet.payloadType === this.#payloadType;
    const isEvent = packet.payloadType === this.#telephoneEventPt;
    if (!isAudio && !isEvent) {
      this.#counts.otherPayloads++;
      return;
    }
    if (this.#remoteSsrc !== packet.ssrc) {
      if (this.#remoteSsrc !== undefined) {
        // A new source (the peer restarted its stream): its numbering starts afresh.
        this.#logger.info({ from: this.#remoteSsrc, to: packet.ssrc }, "remote SSRC changed");
        this.#receiverStats = new ReceiverStats({ clockRate: CLOCK_RATE });
        this.#jitter.reset();
        this.#pending = new Int16Array(0);
      }
      this.#remoteSsrc = packet.ssrc;
    }
    const now = this.#clock.now();
    this.#receiverStats.receive({
      sequence: packet.sequence,
      timestamp: packet.timestamp,
      arrivalMs: now,
      payloadBytes: packet.payload.length,
    });
    if (!this.#receiveEnabled) return;
    if (isEvent) {
      const digit = this.#dtmfIn.receive(packet.payload, packet.timestamp, packet.ssrc);
      if (digit !== undefined) {
        this.#counts.dtmfReceived++;
        this.emit("dtmf", digit);
      }
      // RFC 4733 §2.5.1.1: events take the audio's sequence numbers; silence keeps their place
      // so that playout neither conceals them as losses nor falls behind.
      this.#jitter.push({
        sequence: packet.sequence,
        timestamp: packet.timestamp,
        payload: this.#silencePayload,
        filler: true,
      });
      return;
    }
    // The jitter buffer keeps its own order; packets on probation are played too.
    this.#jitter.push({
      sequence: packet.sequence,
      timestamp: packet.timestamp,
      payload: Buffer.from(packet.payload),
    });
  }

  #onRtcp(data: Buffer, rinfo: RemoteInfo): void {
    const read = readRtcpCompound(data);
    if (!read.ok) {
      this.#counts.rtcpMalformed++;
      this.#logger.debug({ reason: read.reason }, "RTCP refused");
      return;
    }
    this.#counts.rtcpReceived++;
    if (this.#options.symmetric === true && !this.#rtcpLatched && this.#options.rtcpMux !== true) {
      if (this.#allowed.allows(rinfo.address)) {
        this.#rtcpLatched = true;
        this.#remoteRtcp = { address: rinfo.address, port: rinfo.port };
      }
    }
    for (const packet of read.packets) this.#onRtcpPacket(packet);
  }

  #onRtcpPacket(packet: RtcpPacket): void {
    if (packet.type === "sr" || packet.type === "rr") {
      if (packet.type === "sr" && packet.ssrc === this.#remoteSsrc) {
        this.#receiverStats.noteSenderReport(
          ntpMiddle32(packet.ntpSeconds, packet.ntpFraction),
          this.#clock.now(),
        );
      }
      const aboutUs = packet.reports.find((r) => r.ssrc === this.ssrc);
      if (aboutUs !== undefined) this.#noteReportAboutUs(aboutUs);
    } else if (
      packet.type === "bye" &&
      (this.#remoteSsrc === undefined || packet.ssrcs.includes(this.#remoteSsrc))
    ) {
      this.emit("bye", packet.reason);
    }
  }

  #noteReportAboutUs(block: ReportBlock): void {
    const now = ntpTimestamp(this.#wallClock());
    const rtt = roundTripMs(block, ntpMiddle32(now.seconds, now.fraction));
    this.#remoteReport = {
      fractionLost: block.fractionLost / 256,
      cumulativeLost: block.cumulativeLost,
      jitterMs: (block.jitter * 1000) / CLOCK_RATE,
      ...(rtt !== undefined ? { rttMs: rtt } : {}),
    };
  }

  #scheduleRtcp(baseMs: number): void {
    // §6.3.1: the interval is randomised over [0.5, 1.5] times the computed one.
    const delay = baseMs * (0.5 + Math.random());
    this.#rtcpTimer = this.#clock.setTimeout(() => {
      this.#rtcpTimer = undefined;
      if (!this.#running) return;
      void this.#sendRtcp(false);
      this.#scheduleRtcp(this.#rtcpInterval);
    }, delay);
  }

  #rtcpCompound(bye: boolean): Buffer {
    const reports: ReportBlock[] = [];
    if (this.#remoteSsrc !== undefined && this.#receiverStats.valid) {
      reports.push(this.#receiverStats.reportBlock(this.#remoteSsrc, this.#clock.now()));
    }
    const packets: RtcpPacket[] = [];
    if (this.#sender.packets > 0) {
      const ntp = ntpTimestamp(this.#wallClock());
      packets.push({
        type: "sr",
        ssrc: this.ssrc,
        ntpSeconds: ntp.seconds,
        ntpFraction: ntp.fraction,
        rtpTimestamp: this.#timestamp,
        packetCount: this.#sender.packets,
        octetCount: this.#sender.octets,
        reports,
      });
    } else {
      packets.push({ type: "rr", ssrc: this.ssrc, reports });
    }
    packets.push({ type: "sdes", chunks: [{ ssrc: this.ssrc, cname: this.#cname() }] });
    if (bye) packets.push({ type: "bye", ssrcs: [this.ssrc] });
    return writeRtcpCompound(packets);
  }

  #cname(): string {
    return this.#options.cname ?? `sipsteer@${this.#options.localAddress}`;
  }

  #sendRtcp(bye: boolean): Promise<void> {
    const to = this.#remoteRtcp;
    const socket = this.#options.rtcpMux === true ? this.#rtp : this.#rtcp;
    if (to === undefined || socket === undefined) return Promise.resolve();
    if (!this.#allowed.allows(to.address)) {
      this.#counts.refused++;
      return Promise.resolve();
    }
    const bytes = this.#rtcpCompound(bye);
    this.#counts.rtcpSent++;
    return new Promise((resolve) => {
      socket.send(bytes, to.port, to.address, (error) => {
        if (error !== null && error !== undefined) this.#counts.sendErrors++;
        resolve();
      });
    });
  }

  get stats(): AudioStreamStats {
    const rx = this.#receiverStats.snapshot();
    const jb = this.#jitter.stats;
    return {
      ssrc: this.ssrc,
      ...(this.#remoteSsrc !== undefined ? { remoteSsrc: this.#remoteSsrc } : {}),
      sent: this.#sender.packets,
      sentOctets: this.#sender.octets,
      received: rx.received,
      expected: rx.expected,
      lost: Math.max(0, rx.lost),
      lossPercent: rx.expected > 0 ? (Math.max(0, rx.lost) * 100) / rx.expected : 0,
      jitterMs: rx.jitterMs,
      late: jb.late,
      duplicates: jb.duplicates,
      concealed: jb.concealed,
      underruns: jb.underruns,
      playoutDelayMs: jb.targetDelayMs,
      malformed: this.#counts.malformed,
      otherPayloads: this.#counts.otherPayloads,
      stray: this.#counts.stray,
      refused: this.#counts.refused,
      sendErrors: this.#counts.sendErrors,
      dtmfSent: this.#dtmfOut.sent,
      dtmfReceived: this.#counts.dtmfReceived,
      rtcpSent: this.#counts.rtcpSent,
      rtcpReceived: this.#counts.rtcpReceived,
      rtcpMalformed: this.#counts.rtcpMalformed,
      ...(this.#remoteReport !== undefined ? { remoteReport: this.#remoteReport } : {}),
      ...(this.#remoteRtp !== undefined ? { remote: { ...this.#remoteRtp } } : {}),
    };
  }

  /**
   * sent, received, lost, jitter_ms and an E-model MOS: mouth-to-ear delay taken as half the
   * RTT (when RTCP measured one) plus the playout delay plus one frame of packetisation.
   */
  summary(): AudioStreamSummary {
    const s = this.stats;
    const delay = (s.remoteReport?.rttMs ?? 0) / 2 + s.playoutDelayMs + FRAME_MS;
    return {
      sent: s.sent,
      received: s.received,
      lost: s.lost,
      jitter_ms: Math.round(s.jitterMs * 100) / 100,
      mos:
        Math.round(
          estimateMos({ packetLossPercent: s.lossPercent, oneWayDelayMs: delay, codec: G711_PLC }) *
            100,
        ) / 100,
    };
  }

  /** Sends RTCP BYE, stops the timers and closes the sockets. Idempotent. */
  async stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const wasRunning = this.#running;
    this.#running = false;
    this.#pacer.remove(this.#paced);
    if (this.#rtcpTimer !== undefined) this.#clock.clearTimeout(this.#rtcpTimer);
    this.#rtcpTimer = undefined;
    if (wasRunning) await this.#sendRtcp(true);
    const sockets = [this.#rtp, this.#rtcp].filter((s): s is Socket => s !== undefined);
    await Promise.all(sockets.map(closeSocket));
  }
}
