import { spawn, type ChildProcess } from "node:child_process";
import { isIP } from "node:net";
import { NgClient } from "./ng-client.js";

/** Debian's package for the relay, named whenever the binary is missing. */
export const RTPENGINE_PACKAGE = "rtpengine-daemon";
/** How long a fresh rtpengine has to answer its first ping. */
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 3_000;
/** The last stderr lines a failure report shows. */
const TAIL_LINES = 8;

export interface RtpengineProcessOptions {
  /** The binary (default `rtpengine` on PATH). */
  readonly binary?: string;
  /** ng control socket: an IP literal and a UDP port. */
  readonly ngAddress: string;
  readonly ngPort: number;
  /** Addresses media is relayed on (`--interface`); IPv4 and IPv6 may both be given. */
  readonly interfaces: readonly string[];
  readonly portMin: number;
  readonly portMax: number;
  /** Seconds without RTP before rtpengine drops a call (`--timeout`, default 60). */
  readonly rtpTimeoutS?: number;
  /** `--max-sessions`: refused beyond it with `load limit` (-1: none). */
  readonly maxSessions?: number;
  /** rtpengine's syslog level 0–7 (default 5, notice). */
  readonly logLevel?: number;
  /** Each stderr line (its log), e.g. to a file. */
  readonly onLog?: (line: string) => void;
}

/**
 * One rtpengine (https://github.com/sipwise/rtpengine) run in user space (`--table=-1`: no
 * kernel module) in the foreground, with no config file (Debian's would add CLI and HTTP
 * listeners on fixed ports), ready once it answers an ng ping.
 */
export class RtpengineProcess {
  readonly options: RtpengineProcessOptions;
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  readonly #tail: string[] = [];

  constructor(options: RtpengineProcessOptions) {
    if (isIP(options.ngAddress) === 0)
      throw new RangeError(`rtpengine ngAddress ${options.ngAddress}: not an IP address`);
    if (options.interfaces.length === 0) throw new RangeError("rtpengine interfaces: none given");
    for (const a of options.interfaces)
      if (isIP(a) === 0) throw new RangeError(`rtpengine interfaces: ${a} is not an IP address`);
    if (!(options.portMin > 0 && options.portMax >= options.portMin && options.portMax <= 65535))
      throw new RangeError(`rtpengine ports ${options.portMin}-${options.portMax}: not a range`);
    this.options = options;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    const c = this.#child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** `host:port` of the ng socket. */
  get ngEndpoint(): string {
    const o = this.options;
    return isIP(o.ngAddress) === 6 ? `[${o.ngAddress}]:${o.ngPort}` : `${o.ngAddress}:${o.ngPort}`;
  }

  args(): string[] {
    const o = this.options;
    return [
      "--config-file=none",
      "--foreground",
      "--log-stderr",
      "--table=-1",
      `--listen-ng=${this.ngEndpoint}`,
      ...o.interfaces.map((a) => `--interface=${a}`),
      `--port-min=${o.portMin}`,
      `--port-max=${o.portMax}`,
      `--timeout=${o.rtpTimeoutS ?? 60}`,
      `--log-level=${o.logLevel ?? 5}`,
      "--delete-delay=0",
      ...(o.maxSessions === undefined ? [] : [`--max-sessions=${o.maxSessions}`]),
    ];
  }

  /** Starts it and waits for its first pong; throws naming the package when it is missing. */
  async start(): Promise<void> {
    if (this.#child !== undefined) throw new Error("rtpengine already started");
    const child = spawn(this.options.binary ?? "rtpengine", this.args(), {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.#child = child;
    let spawnError: Error | undefined;
    this.#exited = new Promise((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", (e) => {
        spawnError = e;
        resolve();
      });
    });
    let partial = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        this.#tail.push(line);
        if (this.#tail.length > TAIL_LINES) this.#tail.shift();
        this.options.onLog?.(line);
      }
    });

    const client = new NgClient({
      address: this.options.ngAddress,
      port: this.options.ngPort,
      timeoutMs: 200,
      attempts: 1,
    });
    await client.start();
    try {
      const deadline = Date.now() + READY_TIMEOUT_MS;
      for (;;) {
        if (!this.running) {
          const why =
            (spawnError as NodeJS.ErrnoException | undefined)?.code === "ENOENT"
              ? `${this.options.binary ?? "rtpengine"} not found (Debian package ${RTPENGINE_PACKAGE})`
              : `rtpengine exited before answering: ${this.#tail.join(" | ")}`;
          await this.#exited;
          throw new Error(why, { cause: spawnError });
        }
        try {
          await client.ping();
          return;
        } catch {
          if (Date.now() > deadline) {
            await this.stop();
            throw new Error(
              `rtpengine did not answer on ${this.ngEndpoint}: ${this.#tail.join(" | ")}`,
            );
          }
        }
      }
    } finally {
      await client.stop();
    }
  }

  /** SIGTERM, then SIGKILL when it lingers; resolves when it has exited. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    if (this.running) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await this.#exited;
      clearTimeout(timer);
    }
    await this.#exited;
    child.stderr?.destroy();
  }

  /** SIGKILL at once (tests of a relay that dies). */
  async kill(): Promise<void> {
    if (this.running) this.#child!.kill("SIGKILL");
    await this.#exited;
  }
}
