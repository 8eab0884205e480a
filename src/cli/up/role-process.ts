import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, fstatSync, openSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { LogFollower } from "./log-follower.js";

/** This build's CLI: the children run the same `sipsteer` as `up`. */
const CLI = fileURLToPath(new URL("../main.js", import.meta.url));
/** Set in a child of `up`: main.ts then stops the role when `up` goes away (see parent-watch). */
export const UP_CHILD_ENV = "SIPSTEER_UP_CHILD";
/** pino's number for `warn`: lines at or above it are also shown on up's stderr. */
const PINO_WARN = 40;
/** A failure message shows the child's last warnings and errors, this many. */
const TAIL_LINES = 6;

export interface RoleExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RoleProcessOptions {
  /** `monitor`, `p1` …: the prefix of its lines on stderr, and its log file's name. */
  readonly name: string;
  /** Arguments of `sipsteer` (`monitor -c FILE --json`). */
  readonly args: readonly string[];
  /** Its stderr (its logs) is this file, appended to. */
  readonly logFile: string;
  /** Where its warnings and errors are echoed, prefixed with its name. */
  readonly echo: (line: string) => void;
}

/** A pino line shortened for a terminal: `warn: message (err: …)`. */
function shortLine(line: string): string {
  try {
    const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
    if (typeof entry.level !== "number" || entry.level < PINO_WARN) return "";
    const level = entry.level >= 60 ? "fatal" : entry.level >= 50 ? "error" : "warn";
    const err = entry.err?.message === undefined ? "" : ` (${entry.err.message})`;
    return `${level}: ${entry.msg ?? line}${err}`;
  } catch {
    // Not a log entry (a crash's stack trace): always shown.
    return line;
  }
}

/**
 * One role (`sipsteer monitor` or `sipsteer proxy`) as a child process of `up`: its stderr is
 * its log file (followed, so that warnings also reach up's stderr), its first stdout line is
 * its `--json` line. The log is a file, not a pipe to `up`: a role whose `up` was killed must
 * still be able to log while it stops (pino's sync writes retry a broken pipe for ever). The
 * child runs in its own process group, so a terminal's Ctrl-C reaches only `up`, which stops
 * the children in order; an IPC channel lets the child notice when `up` dies.
 */
export class RoleProcess {
  readonly name: string;
  readonly logFile: string;
  /** Settles when the child has exited (never rejects). */
  readonly exited: Promise<RoleExit>;
  /** The parsed first stdout line; rejects when the child exits before writing it. */
  readonly serving: Promise<Record<string, unknown>>;
  readonly #child: ChildProcess;
  readonly #follower: LogFollower;
  readonly #tail: string[] = [];
  #exit: RoleExit | undefined;

  constructor(options: RoleProcessOptions) {
    this.name = options.name;
    this.logFile = options.logFile;
    const log = openSync(options.logFile, "a");
    this.#follower = new LogFollower({
      file: options.logFile,
      offset: fstatSync(log).size,
      onLine: (line) => {
        const short = shortLine(line);
        if (short === "") return;
        this.#remember(short);
        options.echo(`[${this.name}] ${short}`);
      },
    });
    try {
      this.#child = spawn(process.execPath, [CLI, ...options.args], {
        stdio: ["ignore", "pipe", log, "ipc"],
        detached: true,
        env: { ...process.env, [UP_CHILD_ENV]: "1" },
      });
    } catch (e) {
      this.#follower.stop();
      throw e;
    } finally {
      // The child has its own copy.
      closeSync(log);
    }
    this.exited = new Promise((resolve) => {
      const exited = (exit: RoleExit) => {
        if (this.#exit !== undefined) return;
        // Its last words are in the file: read them before anyone asks why it stopped.
        this.#follower.stop();
        this.#exit = exit;
        resolve(exit);
      };
      this.#child.once("exit", (code, signal) => exited({ code, signal }));
      // A spawn that fails (no such file) emits error and no exit.
      this.#child.once("error", (e) => {
        this.#remember(`spawn failed: ${e.message}`);
        exited({ code: null, signal: null });
      });
    });

    this.serving = new Promise((resolve, reject) => {
      let stdout = "";
      this.#child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
        if (stdout.includes("\n")) return;
        stdout += chunk;
        const nl = stdout.indexOf("\n");
        if (nl < 0) return;
        try {
          resolve(JSON.parse(stdout.slice(0, nl)) as Record<string, unknown>);
        } catch {
          reject(new Error(`${this.name} printed no JSON line: ${stdout.slice(0, nl)}`));
        }
      });
      void this.exited.then((exit) => reject(new Error(this.failureReport(exit))));
    });
    this.serving.catch(() => undefined);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** `p1 (pid 12) exited with code 2; its log: FILE`, then its last warnings and errors. */
  failureReport(exit: RoleExit): string {
    return [
      `${this.name} (pid ${this.pid ?? "none"}) ${describeExit(exit)}; its log: ${this.logFile}`,
      ...this.#tail.map((line) => `  ${line}`),
    ].join("\n");
  }

  #remember(line: string): void {
    this.#tail.push(line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
  }

  /** SIGTERM, then SIGKILL when it is still running after `timeoutMs`. */
  async stop(timeoutMs: number): Promise<RoleExit & { killed: boolean }> {
    if (!this.running) return { ...this.#exit!, killed: false };
    this.#child.kill("SIGTERM");
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      this.kill();
    }, timeoutMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return { ...exit, killed };
  }

  kill(): void {
    if (this.running) this.#child.kill("SIGKILL");
  }
}

/** `exited with code 1`, `was killed by SIGKILL`. */
export function describeExit(exit: RoleExit): string {
  if (exit.signal !== null) return `was killed by ${exit.signal}`;
  if (exit.code === null) return "could not be started";
  return `exited with code ${exit.code}`;
}
