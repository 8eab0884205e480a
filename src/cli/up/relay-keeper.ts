import { closeSync, openSync, writeSync } from "node:fs";
import type { Logger } from "pino";
import { z } from "zod";
import { RTPENGINE_PACKAGE, RtpengineProcess } from "../../media/rtpengine/index.js";

/** How often the keeper looks whether each relay still runs. */
const DEFAULT_WATCH_INTERVAL_MS = 200;
/** A failure message shows the relay's last log lines, this many. */
const TAIL_LINES = 6;

const port = z.number().int().min(1).max(65535);

/** The file `sipsteer relays -c FILE` reads (up writes it as DATA/relays.yaml). */
export const relaysConfigSchema = z.strictObject({
  /** A command on PATH or a path. */
  binary: z.string().min(1).default("rtpengine"),
  /** rtpengine's syslog level, 0 (emerg) … 7 (debug). */
  logLevel: z.number().int().min(0).max(7).default(5),
  relays: z
    .array(
      z.strictObject({
        id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
        ngAddress: z.ipv4().or(z.ipv6()),
        ngPort: port,
        interfaces: z.array(z.ipv4().or(z.ipv6())).min(1),
        portMin: port,
        portMax: port,
        /** rtpengine's `--max-sessions`; absent: no limit. */
        maxSessions: z.number().int().positive().optional(),
        /** Its stderr (rtpengine's log lines) is appended here. */
        logFile: z.string().min(1),
      }),
    )
    .min(1),
});
export type RelaysConfig = z.infer<typeof relaysConfigSchema>;
export type RelaysConfigInput = z.input<typeof relaysConfigSchema>;

/** Validates and freezes; a bad field throws naming it. */
export function parseRelaysConfig(input: unknown): Readonly<RelaysConfig> {
  const result = relaysConfigSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new RangeError(`relays config: ${issue.path.join(".")}: ${issue.message}`);
  }
  return Object.freeze(result.data);
}

/** One serving relay as `sipsteer relays --json` (and `up --json`) names it. */
export interface KeptRelay {
  readonly id: string;
  /** `127.0.0.11:2223` */
  readonly ng: string;
  readonly rtp: { readonly min: number; readonly max: number };
  /** rtpengine's own pid. */
  readonly pid: number;
}

/** rtpengine's `[1700000000.123] WARNING: [core] text` → its level and the rest. */
const RTPENGINE_LINE = /^\[[\d.]+\] ([A-Z]+): (.*)$/;

/** Whether rtpengine's level word is a warning, an error, or neither. */
function severity(level: string): "warn" | "error" | undefined {
  if (level === "WARNING") return "warn";
  if (level === "ERR" || level === "CRIT" || level === "ALERT" || level === "EMERG") return "error";
  return undefined;
}

interface Kept {
  readonly id: string;
  readonly logFile: string;
  readonly process: RtpengineProcess;
  readonly tail: string[];
  fd: number | undefined;
}

/**
 * The relays of `sipsteer up`: several rtpengines started together, each logging to its own
 * file, stopped together, and watched, so that one that stops unasked is reported. They run
 * under this keeper (`sipsteer relays`, a child of up like the roles) rather than under up
 * itself because rtpengine outlives its parent (it ignores a closed stderr): the keeper, like
 * every role, stops when up goes away, and stops its relays with it.
 */
export class RelayKeeper {
  readonly #config: Readonly<RelaysConfig>;
  readonly #logger: Logger;
  readonly #watchIntervalMs: number;
  readonly #kept: Kept[] = [];
  #watch: NodeJS.Timeout | undefined;
  #stopped: Promise<void> | undefined;
  #reportFailure: (e: Error) => void = () => undefined;
  /** Settles with the first relay that stopped unasked, after start() (never rejects). */
  readonly failed: Promise<Error>;

  constructor(
    config: Readonly<RelaysConfig>,
    deps: { readonly logger: Logger; readonly watchIntervalMs?: number },
  ) {
    this.#config = config;
    this.#logger = deps.logger;
    this.#watchIntervalMs = deps.watchIntervalMs ?? DEFAULT_WATCH_INTERVAL_MS;
    this.failed = new Promise((resolve) => (this.#reportFailure = resolve));
  }

  /**
   * Starts every relay at once and resolves when each has answered a ping. When one cannot
   * start, the others are stopped and the first failure is thrown (naming the Debian package
   * when the binary is missing).
   */
  async start(): Promise<KeptRelay[]> {
    if (this.#kept.length > 0) throw new Error("RelayKeeper.start() called twice");
    for (const r of this.#config.relays) {
      const kept: Kept = {
        id: r.id,
        logFile: r.logFile,
        tail: [],
        fd: openSync(r.logFile, "a"),
        process: new RtpengineProcess({
          binary: this.#config.binary,
          ngAddress: r.ngAddress,
          ngPort: r.ngPort,
          interfaces: r.interfaces,
          portMin: r.portMin,
          portMax: r.portMax,
          logLevel: this.#config.logLevel,
          ...(r.maxSessions === undefined ? {} : { maxSessions: r.maxSessions }),
          onLog: (line) => this.#onLog(kept, line),
        }),
      };
      this.#kept.push(kept);
    }
    const outcomes = await Promise.allSettled(this.#kept.map((k) => k.process.start()));
    const failure = outcomes.findIndex((o) => o.status === "rejected");
    if (failure >= 0 || this.#stopped !== undefined) {
      await this.stop();
      if (failure < 0) throw new Error("stopped while starting");
      const reason = (outcomes[failure] as PromiseRejectedResult).reason as Error;
      throw new Error(`${this.#kept[failure]!.id}: ${reason.message}`, { cause: reason });
    }
    this.#watch = setInterval(() => this.#look(), this.#watchIntervalMs);
    return this.#config.relays.map((r, i) => {
      const p = this.#kept[i]!.process;
      this.#logger.info(
        { relay: r.id, rtpenginePid: p.pid, args: p.args() },
        `${r.id}: rtpengine serving on ${p.ngEndpoint}`,
      );
      return {
        id: r.id,
        ng: p.ngEndpoint,
        rtp: { min: r.portMin, max: r.portMax },
        pid: p.pid!,
      };
    });
  }

  #onLog(kept: Kept, line: string): void {
    if (kept.fd !== undefined) writeSync(kept.fd, `${line}\n`);
    kept.tail.push(line);
    if (kept.tail.length > TAIL_LINES) kept.tail.shift();
    const m = RTPENGINE_LINE.exec(line);
    const level = m === null ? undefined : severity(m[1]!);
    if (level !== undefined) this.#logger[level]({ relay: kept.id }, `${kept.id}: ${m![2]!}`);
  }

  /** The first relay no longer running, reported once. */
  #look(): void {
    const down = this.#kept.find((k) => !k.process.running);
    if (down === undefined || this.#stopped !== undefined) return;
    clearInterval(this.#watch);
    this.#reportFailure(
      new Error(
        [
          `${down.id} (rtpengine, pid ${down.process.pid ?? "none"}) stopped unasked; its log: ${down.logFile}`,
          ...down.tail.map((line) => `  ${line}`),
        ].join("\n"),
      ),
    );
  }

  /** Stops every relay (SIGTERM, then SIGKILL when one lingers). Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= this.#stopAll();
    return this.#stopped;
  }

  async #stopAll(): Promise<void> {
    clearInterval(this.#watch);
    await Promise.all(this.#kept.map((k) => k.process.stop()));
    for (const k of this.#kept) {
      if (k.fd !== undefined) closeSync(k.fd);
      k.fd = undefined;
    }
  }
}

/** The message for a binary that is not there. */
export function relayMissingMessage(binary: string): string {
  return `${binary} not found (Debian package ${RTPENGINE_PACKAGE}: apt-get install ${RTPENGINE_PACKAGE})`;
}
