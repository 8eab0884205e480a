// Debian's Chromium driven through playwright-core, with fake camera and microphone. WebRTC is
// kept on this machine: no STUN servers (the pages pass none), no mDNS host names (they would
// be resolved by multicast on the LAN), and the pages keep only loopback ICE candidates.
import { existsSync } from "node:fs";
import type { TestContext } from "node:test";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM_PATH = "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--disable-features=WebRtcHideLocalIpsWithMdns",
  // Root in a container has no user namespace for Chromium's sandbox.
  ...(process.getuid?.() === 0 ? ["--no-sandbox"] : []),
];

/**
 * True when Chromium is installed; otherwise the test is skipped naming the Debian package,
 * and under CI=true it fails instead.
 */
export function requireChromium(t: TestContext): boolean {
  if (existsSync(CHROMIUM_PATH)) return true;
  const message = `${CHROMIUM_PATH} is missing: apt-get install chromium`;
  if (process.env.CI === "true") throw new Error(message);
  t.skip(message);
  return false;
}

/** `extraArgs`: e.g. `--use-file-for-fake-audio-capture=FILE.wav` (a microphone that plays it). */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
  });
}

/** window.sipsteerPhone of web/phone/main.ts, as far as the tests use it. */
export interface PhoneHook {
  register(user: string, password: string): Promise<{ proxy: string; uri: string }>;
  call(target: string): Promise<void>;
  answer(): Promise<void>;
  hangup(): void;
  state(): string;
  cause(): string;
  stats(): Promise<{ audio: number; video: number; pair?: { local: string; remote: string } }>;
  sdp(): { local: string; remote: string };
}
export type PhoneWindow = typeof globalThis & { sipsteerPhone: PhoneHook };
