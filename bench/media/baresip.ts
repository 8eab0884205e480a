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
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
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
    writeFileSync(
      join(dir, "config"),
      [
        "poll_method epoll",
        "net_interface 127.0.0.1",
        "sip_listen 127.0.0.1:0",
        `rtp_ports ${o.rtpBase}-${o.rtpBase + 40}`,
        "module_path /usr/lib/baresip/modules",
        "module g711.so",
        "module ausine.so",
        "module aufile.so",
        "module rtcpsummary.so",
        "module_app account.so",
        "module_app menu.so",
        "module_app ctrl_tcp.so",
        `ctrl_tcp_listen 127.0.0.1:${ctrlPort}`,
        `audio_source ausine,${o.toneHz}`,
        "audio_player aufile,/dev/null",
        "audio_alert aufile,/dev/null",
        "ausrc_srate 48000",
        "auplay_srate 48000",
        "ausrc_channels 2",
        "auplay_channels 2",
        "",
      ].join("\n"),
    );
    const params = [
      `;auth_pass=${o.password}`,
      `;outbound="sip:${o.proxy.address}:${o.proxy.port};transport=udp;lr"`,
      ";regint=300",
      o.autoAnswer ? ";answermode=auto" : "",
    ].join("");
    writeFileSync(join(dir, "accounts"), `<sip:${o.user}@${o.domain}>${params}\n`);
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
    const body = JSON.stringify({ command, params, token: String(Date.now()) });
    return new Promise((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port: this.#ctrlPort });
      let buffer = "";
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`baresip gave no answer to ${command}`));
      }, 5000);
      socket.setEncoding("utf8");
      socket.on("connect", () => socket.write(`${Buffer.byteLength(body)}:${body},`));
      socket.on("data", (chunk: string) => {
        buffer += chunk;
        // `<length>:<json>,` — events come too; the response says "response":true.
        for (;;) {
          const colon = buffer.indexOf(":");
          if (colon < 0) return;
          const length = Number(buffer.slice(0, colon));
          if (buffer.length < colon + 1 + length + 1) return;
          const message = JSON.parse(buffer.slice(colon + 1, colon + 1 + length)) as Record<
            string,
            unknown
          >;
          buffer = buffer.slice(colon + 1 + length + 1);
          if (message.response === true) {
            clearTimeout(timer);
            socket.end();
            resolve(message);
            return;
          }
        }
      });
      socket.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  async stop(): Promise<void> {
    await stopGroup(this.#child, "SIGTERM", 3000);
    removeDir(this.#dir);
  }
}
