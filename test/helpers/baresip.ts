// baresip (Debian baresip-core 1.0) as a real softphone in tests: headless, on loopback only,
// a 1 kHz (or any) sine from `ausine` as its microphone, everything it sends and hears written
// to WAV by `sndfile`, optional VP8 video from `fakevideo`, end-of-call RTCP statistics from
// `rtcpsummary`, and commands (dial, accept, hangup) over `ctrl_tcp`'s netstring JSON.
//
// What baresip 1.0 needs that is not obvious: `ausine` runs only at 48 kHz in stereo (so the
// source and player are set to that and baresip resamples to G.711's 8 kHz), and a 401 that
// offers SHA-256 makes it give up (challenge it with MD5 only).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./sipp.js";

export interface BaresipOptions {
  readonly user: string;
  readonly domain: string;
  /** Registrar and outbound proxy: every request goes there. */
  readonly proxy: {
    readonly address: string;
    readonly port: number;
    readonly transport?: "udp" | "tcp";
  };
  readonly password?: string;
  /** REGISTER at start (default true); off, the phone only places calls. */
  readonly register?: boolean;
  /** Answer every incoming call at once. */
  readonly autoAnswer?: boolean;
  /** Frequency of the sine it sends (default 1000 Hz). */
  readonly toneHz?: number;
  /** Offer and accept VP8 video from `fakevideo`. */
  readonly video?: boolean;
  /** Record what it sends and hears with `sndfile` (default true). */
  readonly record?: boolean;
  /** Quit after this long (a guard: tests stop it sooner). */
  readonly maxSeconds?: number;
}

export interface BaresipRecordings {
  /** What it sent (after the source, before the encoder). */
  readonly sent: string;
  /** What it heard (after the decoder). */
  readonly heard: string;
}

/**
 * Writes baresip's `config` and `accounts` into `dir`: SIP and media on 127.0.0.1 only, its
 * ctrl_tcp on `ctrlPort`, RTP from `rtpBase` (40 ports), recordings under `dir/recordings`.
 */
export function writeBaresipConfig(
  dir: string,
  options: BaresipOptions,
  ctrlPort: number,
  rtpBase: number,
): void {
  const recordings = join(dir, "recordings");
  const record = options.record !== false;
  if (record) mkdirSync(recordings, { recursive: true });
  const modules = [
    "g711.so",
    "ausine.so",
    "aufile.so",
    ...(record ? ["sndfile.so"] : []),
    "rtcpsummary.so",
    ...(options.video === true ? ["fakevideo.so", "vp8.so"] : []),
  ];
  writeFileSync(
    join(dir, "config"),
    [
      "poll_method epoll",
      // Loopback only: the SIP socket, and the address its SDP offers for media.
      "net_interface 127.0.0.1",
      "sip_listen 127.0.0.1:0",
      `rtp_ports ${rtpBase}-${rtpBase + 40}`,
      "module_path /usr/lib/baresip/modules",
      ...modules.map((m) => `module ${m}`),
      "module_app account.so",
      "module_app menu.so",
      "module_app ctrl_tcp.so",
      `ctrl_tcp_listen 127.0.0.1:${ctrlPort}`,
      `audio_source ausine,${options.toneHz ?? 1000}`,
      "audio_player aufile,/dev/null",
      "audio_alert aufile,/dev/null",
      "ausrc_srate 48000",
      "auplay_srate 48000",
      "ausrc_channels 2",
      "auplay_channels 2",
      ...(record ? [`snd_path ${recordings}`] : []),
      ...(options.video === true
        ? [
            "video_source fakevideo,nil",
            "video_display fakevideo,nil",
            "video_size 320x240",
            "video_fps 25",
          ]
        : []),
      "",
    ].join("\n"),
  );
  const { address, port, transport = "udp" } = options.proxy;
  const params = [
    options.password === undefined ? "" : `;auth_pass=${options.password}`,
    `;outbound="sip:${address}:${port};transport=${transport};lr"`,
    options.register === false ? ";regint=0" : ";regint=300",
    options.autoAnswer === true ? ";answermode=auto" : "",
  ].join("");
  writeFileSync(join(dir, "accounts"), `<sip:${options.user}@${options.domain}>${params}\n`);
}

export class Baresip {
  readonly dir: string;
  readonly #child: ChildProcess;
  readonly #ctrlPort: number;
  #output = "";
  #exited: Promise<number | null>;

  private constructor(dir: string, child: ChildProcess, ctrlPort: number) {
    this.dir = dir;
    this.#child = child;
    this.#ctrlPort = ctrlPort;
    child.stdout!.setEncoding("utf8").on("data", (c: string) => (this.#output += c));
    child.stderr!.setEncoding("utf8").on("data", (c: string) => (this.#output += c));
    this.#exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  }

  static async start(options: BaresipOptions): Promise<Baresip> {
    const dir = mkdtempSync(join(tmpdir(), `sipsteer-baresip-${options.user}-`));
    const ctrlPort = await freePort();
    writeBaresipConfig(dir, options, ctrlPort, 20_000 + 2 * Math.floor(Math.random() * 10_000));
    const child = spawn("baresip", ["-f", dir, "-t", String(options.maxSeconds ?? 60)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const phone = new Baresip(dir, child, ctrlPort);
    try {
      await phone.waitFor(/baresip is ready/, 10_000);
      if (options.register !== false) await phone.waitFor(/200 OK .*binding/, 10_000);
    } catch (e) {
      await phone.stop();
      throw e;
    }
    return phone;
  }

  get output(): string {
    return this.#output;
  }

  /** Resolves once the output matches, or throws with the output after `ms`. */
  async waitFor(pattern: RegExp, ms: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const match = pattern.exec(this.#output);
      if (match !== null) return match;
      if (Date.now() > deadline || this.#child.exitCode !== null) {
        throw new Error(`baresip never said ${String(pattern)}; it said:\n${this.#output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sends a ctrl_tcp command (`dial`, `accept`, `hangup`, …) and returns its response JSON. */
  command(command: string, params = ""): Promise<Record<string, unknown>> {
    return baresipCommand(this.#ctrlPort, command, params);
  }

  /** The WAV files sndfile wrote for the newest call. */
  recordings(): BaresipRecordings {
    const files = readdirSync(join(this.dir, "recordings")).sort();
    const sent = files.filter((f) => f.endsWith("-enc.wav")).at(-1);
    const heard = files.filter((f) => f.endsWith("-dec.wav")).at(-1);
    if (sent === undefined || heard === undefined) {
      throw new Error(`baresip recorded no call; it said:\n${this.#output}`);
    }
    return { sent: join(this.dir, "recordings", sent), heard: join(this.dir, "recordings", heard) };
  }

  /** Quits baresip (SIGTERM, then SIGKILL), waits for it, and removes its folder. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill("SIGTERM");
      const timer = setTimeout(() => this.#child.kill("SIGKILL"), 3000);
      await this.#exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A ctrl_tcp command to the baresip listening on `ctrlPort` (netstring JSON); its response. */
export function baresipCommand(
  ctrlPort: number,
  command: string,
  params = "",
): Promise<Record<string, unknown>> {
  const body = JSON.stringify({ command, params, token: String(Date.now()) });
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port: ctrlPort });
    let buffer = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`baresip gave no answer to ${command}`));
    }, 5000);
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(`${Buffer.byteLength(body)}:${body},`));
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      // Netstrings: `<length>:<json>,`; events come too, the response has "response":true.
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
