// Calls held open through a proxy, with SIPp at both ends: a callee (call-uas.xml) that answers
// and waits for the BYE, and a caller (call-uac.xml) that holds each call `holdMs` before
// hanging up. What makes a proxy's dialog count (and so its workload) rise for real.
import assert from "node:assert/strict";
import {
  callArgs,
  freePort,
  registerArgs,
  startSipp,
  waitForBound,
  type SippResult,
  type SippRun,
} from "./sipp.js";

export const DOMAIN = "sipsteer.test";

/** A SIPp callee on a free UDP port taking `calls` calls; `kill()` it in `finally`. */
export async function startCallee(
  calls: number,
  timeoutMs = 120_000,
): Promise<SippRun & { port: number }> {
  const port = await freePort();
  const run = startSipp({
    scenario: "call-uas.xml",
    transport: "u1",
    localPort: port,
    calls,
    timeoutMs,
  });
  await waitForBound(port, "udp");
  return Object.assign(run, { port });
}

/** Binds `user` at a sipsteer proxy (UDP `remote`) to a contact on `contactPort` of loopback. */
export async function registerContact(
  remote: string,
  user: string,
  contactPort: number,
): Promise<void> {
  const run = startSipp({
    scenario: "register-contact-uac.xml",
    transport: "u1",
    remote,
    localPort: await freePort(),
    calls: 1,
    timeoutMs: 20_000,
    extraArgs: registerArgs(user, contactPort),
  });
  const result = await run.result;
  assert.equal(result.successful, 1, `REGISTER of ${user} failed:\n${result.output}`);
}

export interface HoldOptions {
  /** The proxy's UDP address, `127.0.0.1:PORT`. */
  readonly remote: string;
  /** The called user (`sip:<user>@sipsteer.test`). */
  readonly user: string;
  readonly calls: number;
  /** How long each call stays up before its BYE. */
  readonly holdMs: number;
}

/** Starts a SIPp caller placing `calls` held calls at 20 calls/s; `result` when all ended. */
export async function holdCalls(options: HoldOptions): Promise<SippRun> {
  return startSipp({
    scenario: "call-uac.xml",
    transport: "u1",
    remote: options.remote,
    localPort: await freePort(),
    calls: options.calls,
    rate: 20,
    timeoutMs: options.holdMs + 60_000,
    extraArgs: callArgs(options.user, options.holdMs),
  });
}

/** Asserts every call of a caller's run went through. */
export function assertAllCalls(result: SippResult, calls: number, what: string): void {
  assert.equal(
    result.successful,
    calls,
    `${what}: ${result.successful} of ${calls}\n${result.output}`,
  );
  assert.equal(result.failed, 0, `${what}: ${result.failed} failed\n${result.output}`);
}
