import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** How often a followed log file is read for new lines. */
export const DEFAULT_FOLLOW_INTERVAL_MS = 200;
const CHUNK_BYTES = 64 * 1024;

/**
 * Reads the lines appended to a file from `offset` on, as `tail -f` does: the file a child
 * writes its logs to directly (so that its logs outlive `up`, and a child never writes to a
 * pipe nobody reads). `drain()` reads what is left; `stop()` closes the file and the timer.
 */
export class LogFollower {
  readonly #fd: number;
  readonly #onLine: (line: string) => void;
  #offset: number;
  #pending = "";
  #timer: NodeJS.Timeout | undefined;

  constructor(options: {
    readonly file: string;
    readonly offset: number;
    readonly onLine: (line: string) => void;
    readonly intervalMs?: number;
  }) {
    this.#fd = openSync(options.file, "r");
    this.#offset = options.offset;
    this.#onLine = options.onLine;
    this.#timer = setInterval(() => this.drain(), options.intervalMs ?? DEFAULT_FOLLOW_INTERVAL_MS);
  }

  /** Reads every whole line written since the last read. */
  drain(): void {
    if (this.#timer === undefined) return;
    const size = fstatSync(this.#fd).size;
    if (size < this.#offset) this.#offset = 0; // truncated: start again
    const buffer = Buffer.alloc(CHUNK_BYTES);
    while (this.#offset < size) {
      const n = readSync(
        this.#fd,
        buffer,
        0,
        Math.min(CHUNK_BYTES, size - this.#offset),
        this.#offset,
      );
      if (n <= 0) break;
      this.#offset += n;
      this.#pending += buffer.toString("utf8", 0, n);
    }
    let nl: number;
    while ((nl = this.#pending.indexOf("\n")) >= 0) {
      const line = this.#pending.slice(0, nl);
      this.#pending = this.#pending.slice(nl + 1);
      this.#onLine(line);
    }
  }

  /** Reads what is left, then closes the file and clears the timer. Idempotent. */
  stop(): void {
    if (this.#timer === undefined) return;
    this.drain();
    if (this.#pending !== "") this.#onLine(this.#pending);
    clearInterval(this.#timer);
    this.#timer = undefined;
    closeSync(this.#fd);
  }
}
