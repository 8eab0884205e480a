// `sipsteer call` and `sipsteer answer` (issue 6): a softphone on the command line. It asks the
// monitor where to go, registers there, and sends and receives G.711 over RTP; at the end of a
// call it prints the proxy, setup time, packets and MOS (src/cli/call-report.ts).
import pino from "pino";
import {
  RtpMediaSession,
  UserAgent,
  candidateName,
  type Call,
  type ProxyCandidate,
} from "../client/index.js";
import { DEFAULT_ALLOWED_DESTINATIONS } from "../sip/index.js";
import { formatCallReport, type CallReport } from "./call-report.js";

export interface PhoneOptions {
  readonly monitor: string[];
  readonly user: string;
  readonly password: string;
  readonly domain: string;
  readonly transport: "udp" | "tcp";
  /** Our address for SIP and RTP (an IP literal). */
  readonly address: string;
  readonly allow?: string[];
  /** Move at a refresh when another proxy is markedly less loaded (DESIGN.md). */
  readonly rebalance?: boolean;
  readonly play?: string;
  readonly record?: string;
  /** Offer and accept VP8 video; a string is an IVF file to send. */
  readonly video?: string | boolean;
  readonly recordVideo?: string;
  readonly json?: boolean;
  readonly logLevel?: string;
}

export interface CallCommandOptions extends PhoneOptions {
  /** Seconds of media after the answer, then BYE. */
  readonly duration: number;
}

/** A line for people on stderr, or an event object on stdout with --json. */
function say(options: PhoneOptions, event: Record<string, unknown>, text: string): void {
  if (options.json === true) process.stdout.write(`${JSON.stringify(event)}\n`);
  else process.stderr.write(`${text}\n`);
}

function userAgentFor(options: PhoneOptions): UserAgent {
  const logger = pino({ level: options.logLevel ?? "warn" }, pino.destination(2));
  const ua = new UserAgent(
    {
      user: options.user,
      password: options.password,
      domain: options.domain,
      transport: options.transport,
      monitors: options.monitor,
      address: options.address,
      ...(options.allow === undefined ? {} : { allowedDestinations: options.allow }),
      ...(options.rebalance === true ? { rebalance: true } : {}),
    },
    { logger },
  );
  ua.on("registered", (p: ProxyCandidate) =>
    say(
      options,
      { event: "registered", proxy: candidateName(p), uri: p.uri },
      `registered at ${candidateName(p)} (${p.uri})`,
    ),
  );
  ua.on("moved", (from: ProxyCandidate, to: ProxyCandidate, reason: string) =>
    say(
      options,
      { event: "moved", from: candidateName(from), to: candidateName(to), reason },
      `moved from ${candidateName(from)} to ${candidateName(to)}: ${reason}`,
    ),
  );
  ua.on("error", (e: Error) =>
    say(options, { event: "error", message: e.message }, `error: ${e.message}`),
  );
  return ua;
}

function mediaFor(
  options: PhoneOptions,
  record: string | undefined,
  recordVideo: string | undefined,
): RtpMediaSession {
  const wantsVideo = options.video !== undefined && options.video !== false;
  return new RtpMediaSession({
    localAddress: options.address,
    allowedDestinations: options.allow ?? DEFAULT_ALLOWED_DESTINATIONS,
    ...(options.play === undefined ? {} : { play: options.play }),
    ...(record === undefined ? {} : { recordPath: record }),
    ...(wantsVideo || recordVideo !== undefined
      ? {
          video: {
            ...(typeof options.video === "string" ? { play: options.video } : {}),
            ...(recordVideo === undefined ? {} : { record: recordVideo }),
          },
        }
      : {}),
  });
}

/** FILE for the first call, FILE-2.ext for the second … (answer takes many calls). */
function numbered(path: string | undefined, call: number): string | undefined {
  if (path === undefined || call === 1) return path;
  const dot = path.lastIndexOf(".");
  return dot > path.lastIndexOf("/")
    ? `${path.slice(0, dot)}-${call}${path.slice(dot)}`
    : `${path}-${call}`;
}

function reportOf(
  call: Call,
  media: RtpMediaSession,
  answered: boolean,
  proxy: ProxyCandidate | undefined,
  setupMs?: number,
): CallReport {
  const audio = media.summary();
  return {
    proxy: call.proxyName ?? (proxy === undefined ? null : candidateName(proxy)),
    answered,
    setup_ms: setupMs ?? call.setupMs ?? null,
    audio:
      audio === undefined
        ? null
        : {
            sent: audio.sent,
            received: audio.received,
            lost: audio.lost,
            jitter_ms: audio.jitter_ms,
          },
    video: (() => {
      const v = media.videoStats();
      return v === undefined
        ? null
        : { sent: v.sentPackets, received: v.receivedPackets, lost: v.lost, jitter_ms: v.jitterMs };
    })(),
    mos: audio === undefined || audio.received === 0 ? null : audio.mos,
  };
}

function printReport(options: PhoneOptions, report: CallReport): void {
  if (options.json === true) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(`${formatCallReport(report)}\n`);
}

/** Resolves on SIGINT or SIGTERM (and stops listening for them). */
function interrupted(): { promise: Promise<string>; dispose: () => void } {
  let resolve!: (s: string) => void;
  const promise = new Promise<string>((r) => (resolve = r));
  const onInt = () => resolve("SIGINT");
  const onTerm = () => resolve("SIGTERM");
  process.once("SIGINT", onInt);
  process.once("SIGTERM", onTerm);
  return {
    promise,
    dispose: () => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
    },
  };
}

/**
 * Places one call and ends it after `duration` seconds of media. Exit 0 only when the call was
 * answered and audio arrived; 1 otherwise.
 */
export async function runCallCommand(target: string, options: CallCommandOptions): Promise<number> {
  const ua = userAgentFor(options);
  const media = mediaFor(options, options.record, options.recordVideo);
  const signals = interrupted();
  await ua.start();
  try {
    await ua.register();
    const call = ua.call(target, { media });
    let answered = false;
    try {
      await Promise.race([call.whenAnswered(), signals.promise.then(() => call.cancel())]);
      answered = call.state === "answered";
    } catch (e) {
      say(options, { event: "failed", message: (e as Error).message }, (e as Error).message);
    }
    if (answered) {
      say(
        options,
        { event: "answered", proxy: call.proxyName, setup_ms: call.setupMs },
        `answered (${call.setupMs === undefined ? "-" : Math.round(call.setupMs)} ms)`,
      );
      const ended = call.whenEnded();
      let timer: NodeJS.Timeout | undefined;
      const elapsed = new Promise<void>((r) => (timer = setTimeout(r, options.duration * 1000)));
      await Promise.race([elapsed, ended, signals.promise]);
      clearTimeout(timer);
      if (call.state !== "ended") await call.hangup();
    }
    await call.whenEnded();
    const report = reportOf(call, media, answered, ua.proxy);
    printReport(options, report);
    const videoFlowed = report.video === null || report.video.received > 0;
    return answered && (report.audio?.received ?? 0) > 0 && videoFlowed ? 0 : 1;
  } finally {
    signals.dispose();
    await media.stop();
    await ua.stop();
  }
}

/**
 * Registers and answers every call until SIGINT or SIGTERM, printing a report as each ends.
 * With --record, the calls are recorded one after another into FILE.wav, FILE-2.wav, ….
 */
export async function runAnswerCommand(options: PhoneOptions): Promise<number> {
  const ua = userAgentFor(options);
  const signals = interrupted();
  const pending = new Set<Promise<void>>();
  let calls = 0;
  ua.on("incoming", (call: Call) => {
    calls++;
    const media = mediaFor(
      options,
      numbered(options.record, calls),
      numbered(options.recordVideo, calls),
    );
    const arrived = Date.now();
    say(options, { event: "incoming", from: call.remoteUri }, `call from ${call.remoteUri}`);
    const done = (async () => {
      let answered = false;
      let setupMs: number | undefined;
      try {
        await call.answer({ media });
        answered = call.state === "answered";
        setupMs = Date.now() - arrived;
      } catch (e) {
        say(options, { event: "failed", message: (e as Error).message }, (e as Error).message);
      }
      await call.whenEnded();
      await media.stop();
      printReport(options, reportOf(call, media, answered, ua.proxy, setupMs));
    })();
    pending.add(done);
    void done.finally(() => pending.delete(done));
  });
  await ua.start();
  try {
    await ua.register();
    await signals.promise;
    return 0;
  } finally {
    signals.dispose();
    await ua.stop();
    await Promise.allSettled(pending);
  }
}
