// bench:media's reference: baresip 1.0 (Debian baresip-core) phones as separate processes,
// configured as test/helpers/baresip.ts configures them (headless, loopback only, an `ausine`
// tone as the microphone, nothing played), but started through the bench harness so that they
// are pinned and reaped with every other child. No sndfile: writing WAVs is not a phone's work.
//
// `ausine` runs only at 48 kHz in stereo, so each baresip resamples to and from G.711's 8 kHz
// mono: part of its CPU is that, which a phone with an 8 kHz source would not spend. baresip
// 1.0 has no file or null player (its `aufile` is a source only), so `audio_player` opens
// nothing and its rx pipeline says "(play) <--- PCMU": it decodes and resamples what arrives
// into its buffer, and nothing plays it out.
import type { ChildProcess } from "node:child_process";
import { baresipCommand, writeBaresipConfig } from "../../test/helpers/baresip.js";
import { freePort } from "../../test/helpers/sipp.js";
import { launch, removeDir, sleep, stopGroup, tail, tempDir } from "../monitor/harness.js";

export interface BaresipPhoneOptions {
  readonly user: string;
  readonly password: string;
  readonly domain: string;
  /** The proxy: registrar and outbound proxy, over UDP. */
  readonly proxy: { readonly address: string; readonly port: number };
  readonly autoAnswer: boolean;
  readonly toneHz: number;
  readonly cpu: number | undefined;
  /** The first of 40 RTP ports it may use. */
  readonly rtpBase: number;
}

export class BaresipPhone {
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #ctrlPort: number;
  readonly #output: () => string;

  private constructor(child: ChildProcess, dir: string, ctrlPort: number) {
    this.#child = child;
    this.#dir = dir;
    this.#ctrlPort = ctrlPort;
    // stdout and stderr together: baresip writes its events to both.
    const out = tail(child.stdout, 20_000);
    const err = tail(child.stderr, 20_000);
    this.#output = () => out() + err();
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  get output(): string {
    return this.#output();
  }

  static async start(o: BaresipPhoneOptions): Promise<BaresipPhone> {
    const dir = tempDir(`sipsteer-bench-baresip-${o.user}-`);
    const ctrlPort = await freePort();
    // The tests' configuration, without recordings (sndfile would write two WAV files a call).
    writeBaresipConfig(dir, { ...o, record: false }, ctrlPort, o.rtpBase);
    const child = launch("baresip", ["-f", dir, "-t", "600"], { cpu: o.cpu });
    const phone = new BaresipPhone(child, dir, ctrlPort);
    try {
      await phone.waitFor(/baresip is ready/, 15_000);
      await phone.waitFor(/200 OK .*binding/, 15_000);
    } catch (e) {
      await phone.stop();
      throw e;
    }
    return phone;
  }

  /** Resolves once the output matches `pattern` `count` times, or throws with the output. */
  async waitFor(pattern: RegExp, ms: number, count = 1): Promise<void> {
    const deadline = Date.now() + ms;
    const global = new RegExp(pattern.source, "g");
    for (;;) {
      if ((this.output.match(global)?.length ?? 0) >= count) return;
      if (Date.now() > deadline || this.#child.exitCode !== null) {
        throw new Error(`baresip never said ${String(pattern)}; it said:\n${this.output}`);
      }
      await sleep(50);
    }
  }

  /** A ctrl_tcp command (netstring JSON); resolves with its response. */
  command(command: string, params = ""): Promise<Record<string, unknown>> {
    return baresipCommand(this.#ctrlPort, command, params);
  }

  async stop(): Promise<void> {
    await stopGroup(this.#child, "SIGTERM", 3000);
    removeDir(this.#dir);
  }
}
