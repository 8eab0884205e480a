// The VP8 test clip, made at test time by Debian's ffmpeg (libvpx) so that no binary video
// sits in git, and ffprobe's view of a file, which the video tests compare against.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { rmSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { promisify } from "node:util";
import { requireTool } from "./tools.js";

const run = promisify(execFile);

export interface VideoClip {
  readonly path: string;
  /** The frames ffprobe decodes in it. */
  readonly frames: number;
  readonly width: number;
  readonly height: number;
  readonly frameRate: number;
  /** A temporary folder for the test's other files, removed after the test. */
  readonly dir: string;
}

export interface VideoProbe {
  readonly codec: string;
  /** Frames ffprobe read (`-count_frames`: each one decoded). */
  readonly frames: number;
  readonly width: number;
  readonly height: number;
}

/** ffprobe's reading of the first video stream of `path`. */
export async function probeVideo(path: string): Promise<VideoProbe> {
  const { stdout } = await run(
    "ffprobe",
    [
      "-v",
      "error",
      "-count_frames",
      "-select_streams",
      "v:0",
      "-show_entries",
      "stream=codec_name,nb_read_frames,width,height",
      "-of",
      "json",
      path,
    ],
    { timeout: 15_000 },
  );
  const stream = (JSON.parse(stdout) as { streams?: Record<string, unknown>[] }).streams?.[0];
  if (stream === undefined) throw new Error(`ffprobe finds no video stream in ${path}`);
  return {
    codec: String(stream.codec_name),
    frames: Number(stream.nb_read_frames),
    width: Number(stream.width),
    height: Number(stream.height),
  };
}

/** Clips made in this process, by their settings: each is made once, removed at exit. */
const clips = new Map<string, Promise<Omit<VideoClip, "dir">>>();

async function makeClipOnce(seconds: number, frameRate: number): Promise<Omit<VideoClip, "dir">> {
  const dir = await mkdtemp(join(tmpdir(), "sipsteer-clip-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "clip.ivf");
  // -g: a key frame every second; -auto-alt-ref 0: no hidden frames, so frames = pictures.
  await run(
    "ffmpeg",
    [
      ...["-hide_banner", "-loglevel", "error", "-nostdin", "-y"],
      ...["-f", "lavfi", "-i", `testsrc=size=320x240:rate=${frameRate}`, "-t", String(seconds)],
      ...["-c:v", "libvpx", "-b:v", "300k", "-g", String(frameRate), "-auto-alt-ref", "0"],
      ...["-f", "ivf", path],
    ],
    { timeout: 30_000 },
  );
  const probe = await probeVideo(path);
  if (probe.codec !== "vp8") throw new Error(`ffmpeg made ${probe.codec}, not VP8`);
  return { path, frames: probe.frames, width: probe.width, height: probe.height, frameRate };
}

/**
 * A 2 s 320x240 25 fps VP8 clip (ffmpeg's testsrc, a key frame each second), made once per
 * test process and confirmed by ffprobe, with a fresh temporary folder for the test's own
 * files, removed after the test. Undefined when ffmpeg is missing (the test is skipped; under
 * CI it fails).
 */
export async function makeVideoClip(
  t: TestContext,
  options: { seconds?: number; frameRate?: number } = {},
): Promise<VideoClip | undefined> {
  if (!requireTool(t, "ffmpeg", "ffmpeg") || !requireTool(t, "ffprobe", "ffmpeg")) return undefined;
  const seconds = options.seconds ?? 2;
  const frameRate = options.frameRate ?? 25;
  const key = `${seconds}s@${frameRate}`;
  let clip = clips.get(key);
  if (clip === undefined) {
    clip = makeClipOnce(seconds, frameRate);
    clips.set(key, clip);
  }
  const dir = await mkdtemp(join(tmpdir(), "sipsteer-video-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return { ...(await clip), dir };
}

/** A child process that is always reaped: `exited` settles with its exit code or signal. */
export interface RunningTool {
  readonly process: ChildProcess;
  readonly exited: Promise<number | string | null>;
  /** What it wrote to stdout and stderr so far (for failure messages). */
  output(): string;
  /** Its exit code or signal, or "still running" after `ms` (it is not killed). */
  exitWithin(ms: number): Promise<number | string | null>;
  /** Kills it by PID (SIGKILL when it does not end within 3 s) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string | null>;
}

/** Starts `command` with stdin a pipe; the caller stops it in `finally`. */
export function startTool(command: string, args: readonly string[]): RunningTool {
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string | null>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal));
    child.once("error", (error) => resolve(error.message));
  });
  return {
    process: child,
    exited,
    output: () => output,
    async exitWithin(ms) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve("still running"), ms);
      });
      const result = await Promise.race([exited, late]);
      clearTimeout(timer);
      return result;
    },
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(child.pid, signal);
        const timer = setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        }, 3000);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}

/** A free even UDP port on 127.0.0.1 whose odd neighbour is free too (RTP and RTCP). */
export async function freeRtpPortPair(): Promise<number> {
  const bind = (port: number): Promise<Socket | undefined> =>
    new Promise((resolve) => {
      const socket = createSocket("udp4");
      socket.once("error", () => resolve(undefined));
      socket.bind({ port, address: "127.0.0.1", exclusive: true }, () => resolve(socket));
    });
  const close = (socket: Socket | undefined): Promise<void> =>
    new Promise((resolve) => (socket === undefined ? resolve() : socket.close(() => resolve())));
  for (;;) {
    const rtp = await bind(0);
    const port = rtp?.address().port ?? 1;
    const rtcp = port % 2 === 0 ? await bind(port + 1) : undefined;
    await close(rtp);
    await close(rtcp);
    if (rtcp !== undefined) return port;
  }
}

/** Whether some process has a UDP socket bound to `port` (Linux: /proc/net/udp and udp6). */
export async function udpPortBound(port: number): Promise<boolean> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const table of ["/proc/net/udp", "/proc/net/udp6"]) {
    const text = await readFile(table, "utf8").catch(() => "");
    // Each line: "sl local_address rem_address ...", the local address as HEX_IP:HEX_PORT.
    if (text.split("\n").some((line) => line.trim().split(/\s+/)[1]?.endsWith(hex))) {
      return true;
    }
  }
  return false;
}
