// The proxy between real peers: SIPp callers and callees (Debian sip-tester). Calls go
// UAC → our proxy → UAS over UDP and over TCP, 10,000 each, with the callee found in the
// location store where a SIPp REGISTER put it; REGISTER with and without digest
// authentication; calls whose INVITE is challenged (407) and answered.
import assert from "node:assert/strict";
import { after, before, describe, test, type TestContext } from "node:test";
import { Proxy, type ProxyConfigInput } from "../../src/proxy/index.js";
import { Credentials } from "../../src/sip/index.js";
import { openHandles } from "../helpers/handles.js";
import {
  callArgs,
  freePort,
  registerArgs,
  startSipp,
  waitForBound,
  type SippOptions,
  type SippResult,
} from "../helpers/sipp.js";
import { requireTool } from "../helpers/tools.js";

const DOMAIN = "sipsteer.test";
const LOOPBACK = ["127.0.0.0/8", "::1/128"];

async function sipp(options: SippOptions): Promise<SippResult> {
  const run = startSipp(options);
  try {
    return await run.result;
  } finally {
    run.kill();
  }
}

function proxyConfig(auth: boolean): ProxyConfigInput {
  return {
    id: "p1",
    domains: [DOMAIN],
    listen: [
      { protocol: "udp", address: "127.0.0.1", port: 0 },
      { protocol: "tcp", address: "127.0.0.1", port: 0 },
    ],
    allowedDestinations: LOOPBACK,
    auth: { enabled: auth },
    http: { address: "127.0.0.1", port: 0 },
  };
}

function portOf(proxy: Proxy, protocol: "udp" | "tcp"): number {
  return proxy.listeners.find((l) => l.protocol === protocol)!.port;
}

/** Registers `user` at the proxy with the Contact of a SIPp callee on `contactPort`. */
async function registerCallee(
  proxy: Proxy,
  transport: "u1" | "t1",
  user: string,
  contactPort: number,
  password?: string,
): Promise<void> {
  const result = await sipp({
    scenario: "register-contact-uac.xml",
    transport,
    remote: `127.0.0.1:${portOf(proxy, transport === "u1" ? "udp" : "tcp")}`,
    localPort: await freePort(),
    calls: 1,
    extraArgs: registerArgs(user, contactPort, password),
  });
  assert.equal(result.successful, 1, `REGISTER of ${user} failed:\n${result.output}`);
}

/** Runs `calls` calls from a SIPp caller through the proxy to a SIPp callee. */
async function callThrough(
  proxy: Proxy,
  transport: "u1" | "t1",
  calls: number,
  rate: number,
  auth?: { caller: string; password: string; callee: string; calleePassword: string },
): Promise<{ caller: SippResult; callee: SippResult }> {
  const calleePort = await freePort();
  const callee = startSipp({
    scenario: "call-uas.xml",
    transport,
    localPort: calleePort,
    calls,
    timeoutMs: 120_000,
  });
  try {
    await waitForBound(calleePort, transport === "u1" ? "udp" : "tcp");
    const user = auth?.callee ?? (transport === "u1" ? "bob" : "carol");
    await registerCallee(proxy, transport, user, calleePort, auth?.calleePassword);
    const caller = await sipp({
      scenario: "call-uac.xml",
      transport,
      remote: `127.0.0.1:${portOf(proxy, transport === "u1" ? "udp" : "tcp")}`,
      localPort: await freePort(),
      calls,
      rate,
      timeoutMs: 120_000,
      extraArgs: [
        ...callArgs(user, 0, auth?.caller),
        ...(auth === undefined ? [] : ["-au", auth.caller, "-ap", auth.password]),
      ],
    });
    return { caller, callee: await callee.result };
  } finally {
    callee.kill();
  }
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("SIPp calls through the proxy", { concurrency: false }, () => {
  let proxy: Proxy;
  before(async () => {
    proxy = new Proxy(proxyConfig(false));
    await proxy.start();
  });
  after(async () => {
    await proxy.stop();
  });

  for (const transport of ["u1", "t1"] as const) {
    const name = transport === "u1" ? "UDP" : "TCP";
    test(`10,000 calls over ${name}: INVITE/180/200/ACK, BYE/200; 0 failed`, async (t: TestContext) => {
      if (!requireTool(t, "sipp", "sip-tester")) return;
      const { caller, callee } = await callThrough(proxy, transport, 10_000, 1000);
      assert.equal(caller.failed, 0, caller.output);
      assert.equal(caller.successful, 10_000);
      assert.equal(callee.failed, 0, callee.output);
      assert.equal(callee.successful, 10_000);
      // Every dialog was counted and ended by its BYE.
      await waitFor("dialogs to end", () => proxy.calls === 0);
      assert.ok(proxy.report().cps > 0, "calls started were counted");
    });
  }

  test("REGISTER without authentication: 100 users bound, counted in the load report", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const before = proxy.report().registrations;
    const result = await sipp({
      scenario: "register-uac.xml",
      transport: "u1",
      remote: `127.0.0.1:${portOf(proxy, "udp")}`,
      localPort: await freePort(),
      calls: 100,
      rate: 200,
    });
    assert.equal(result.failed, 0, result.output);
    assert.equal(result.successful, 100);
    await waitFor("the registration count", () => proxy.report().registrations === before + 100);
  });
});

describe("SIPp against the proxy with digest authentication", { concurrency: false }, () => {
  let proxy: Proxy;
  before(async () => {
    const credentials = Credentials.parse(
      [
        Credentials.line("alice", DOMAIN, "alice-secret"),
        Credentials.line("bob", DOMAIN, "bob-secret"),
      ].join("\n"),
    );
    proxy = new Proxy(proxyConfig(true), { credentials });
    await proxy.start();
  });
  after(async () => {
    await proxy.stop();
  });

  async function register(user: string, password: string, calls: number): Promise<SippResult> {
    return sipp({
      scenario: "register-auth-uac.xml",
      transport: "u1",
      remote: `127.0.0.1:${portOf(proxy, "udp")}`,
      localPort: await freePort(),
      calls,
      rate: 50,
      timeoutMs: 30_000,
      extraArgs: ["-s", user, "-key", "domain", DOMAIN, "-au", user, "-ap", password],
    });
  }

  test("REGISTER is challenged (401) and accepted with the right password", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const result = await register("alice", "alice-secret", 20);
    assert.equal(result.failed, 0, result.output);
    assert.equal(result.successful, 20);
  });

  test("REGISTER with a wrong password is never accepted", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const result = await register("bob", "not-bobs-password", 3);
    assert.equal(result.successful, 0, result.output);
    assert.equal(result.failed, 3);
  });

  test("calls whose INVITE is challenged (407) connect: 200 calls, 0 failed", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const { caller, callee } = await callThrough(proxy, "u1", 200, 100, {
      caller: "alice",
      password: "alice-secret",
      callee: "bob",
      calleePassword: "bob-secret",
    });
    assert.equal(caller.failed, 0, caller.output);
    assert.equal(caller.successful, 200);
    assert.equal(callee.successful, 200, callee.output);
  });
});

test("stopped proxies leave no socket or timer open", async () => {
  const handles = await openHandles();
  assert.deepEqual(handles, {});
});

// Keep the port helper honest: the proxy's own listeners are what SIPp talks to.
test("the proxy binds what it was asked to", async () => {
  const proxy = new Proxy(proxyConfig(false));
  await proxy.start();
  try {
    assert.ok(portOf(proxy, "udp") > 0 && portOf(proxy, "tcp") > 0);
    assert.match(proxy.httpUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  } finally {
    await proxy.stop();
  }
  assert.deepEqual(await openHandles(), {});
});
