import type { TestContext } from "node:test";
import { RtpengineProcess, RTPENGINE_PACKAGE } from "../../src/media/rtpengine/index.js";
import { freePort } from "./sipp.js";
import { requireTool } from "./tools.js";

/** Skips (fails under CI=true) when Debian's rtpengine-daemon is not installed. */
export function requireRtpengine(t: TestContext): boolean {
  return requireTool(t, "rtpengine", RTPENGINE_PACKAGE);
}

/**
 * RTP ports of test relays come from above Linux's ephemeral range (32768–60999) and above
 * freePort's 20000–32000, so that no other test's socket lands in a relay's range.
 */
const RTP_LOW = 61_000;
const RTP_HIGH = 65_000;
const RTP_BLOCK = 200;

export interface TestRelayOptions {
  readonly interfaces?: readonly string[];
  readonly maxSessions?: number;
  readonly rtpTimeoutS?: number;
  /** rtpengine's log level (7: debug) and where its lines go. */
  readonly logLevel?: number;
  readonly onLog?: (line: string) => void;
}

/** A started rtpengine on loopback with its own ng port and RTP range; stop() reaps it. */
export async function startRtpengine(options: TestRelayOptions = {}): Promise<RtpengineProcess> {
  const ngPort = await freePort();
  const blocks = Math.floor((RTP_HIGH - RTP_LOW) / RTP_BLOCK);
  const portMin = RTP_LOW + Math.floor(Math.random() * blocks) * RTP_BLOCK;
  const relay = new RtpengineProcess({
    ngAddress: "127.0.0.1",
    ngPort,
    interfaces: options.interfaces ?? ["127.0.0.1"],
    portMin,
    portMax: portMin + RTP_BLOCK - 1,
    ...(options.maxSessions === undefined ? {} : { maxSessions: options.maxSessions }),
    ...(options.rtpTimeoutS === undefined ? {} : { rtpTimeoutS: options.rtpTimeoutS }),
    ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel }),
    ...(options.onLog === undefined ? {} : { onLog: options.onLog }),
  });
  await relay.start();
  return relay;
}
