// The proxy on several cores (ProxyCluster, node:cluster workers) between real peers: SIPp
// callers and callees over UDP (shared port, each worker's own port in its Via) and TCP
// (the stream listeners live in worker 0), phones on our stack registered over UDP and TCP
// calling each other across workers, registrations shared through the store, drain, a
// killed worker replaced, and stop() leaving no socket, timer or child process behind.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test, type TestContext } from "node:test";
import { ProxyCluster, type ProxyConfigInput } from "../../src/proxy/index.js";
import { openHandles } from "../helpers/handles.js";
import { PROJECT_ROOT } from "../helpers/paths.js";
import {
  DOMAIN,
  LOOPBACK,
  SipPhone,
  callerDialog,
  newRequest,
  nextId,
  until,
} from "../helpers/sip-caller.js";
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

const WORKERS = 2;

function clusterConfig(): ProxyConfigInput {
  return {
    id: "c1",
    domains: [DOMAIN],
    workers: WORKERS,
    listen: [
      { protocol: "udp", address: "127.0.0.1", port: 0 },
      { protocol: "tcp", address: "127.0.0.1", port: 0 },
    ],
    allowedDestinations: LOOPBACK,
    auth: { enabled: false },
    http: { address: "127.0.0.1", port: 0 },
  };
}

async function sipp(options: SippOptions): Promise<SippResult> {
  const run = startSipp(options);
  try {
    return await run.result;
  } finally {
    run.kill();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe(`the proxy on ${WORKERS} worker processes`, { concurrency: false }, () => {
  let proxy: ProxyCluster;
  const port = (protocol: "udp" | "tcp"): number =>
    proxy.listeners.find((l) => l.protocol === protocol)!.port;
  const target = (protocol: "udp" | "tcp") => ({
    protocol,
    address: "127.0.0.1",
    port: port(protocol),
  });

  before(async () => {
    proxy = new ProxyCluster(clusterConfig());
    await proxy.start();
  });
  after(async () => {
    const pids = proxy.workerPids;
    await proxy.stop();
    for (const pid of pids) assert.equal(isAlive(pid), false, `worker ${pid} was reaped`);
  });

  test("runs one process per worker, each serving", () => {
    const pids = proxy.workerPids;
    assert.equal(pids.length, WORKERS);
    assert.ok(pids.every((pid) => pid > 0 && pid !== process.pid && isAlive(pid)));
    assert.equal(new Set(pids).size, WORKERS);
  });

  async function sippCalls(transport: "u1" | "t1", calls: number, rate: number, user: string) {
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
      const proxyPort = port(transport === "u1" ? "udp" : "tcp");
      const registered = await sipp({
        scenario: "register-contact-uac.xml",
        transport,
        remote: `127.0.0.1:${proxyPort}`,
        localPort: await freePort(),
        calls: 1,
        extraArgs: registerArgs(user, calleePort),
      });
      assert.equal(registered.successful, 1, registered.output);
      const caller = await sipp({
        scenario: "call-uac.xml",
        transport,
        remote: `127.0.0.1:${proxyPort}`,
        localPort: await freePort(),
        calls,
        rate,
        timeoutMs: 120_000,
        extraArgs: callArgs(user, 0),
      });
      return { caller, callee: await callee.result };
    } finally {
      callee.kill();
    }
  }

  test("3,000 SIPp calls over UDP, spread over the workers: 0 failed", async (t: TestContext) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const receivedBefore = proxy.workerStats().map((s) => s?.received ?? 0);
    const { caller, callee } = await sippCalls("u1", 3000, 600, "bob");
    assert.equal(caller.failed, 0, caller.output);
    assert.equal(caller.successful, 3000);
    assert.equal(callee.failed, 0, callee.output);
    assert.equal(callee.successful, 3000);
    await until("dialogs to end", () => proxy.calls === 0, 10_000);
    assert.ok(proxy.report().cps > 0, "calls were counted by the workers and summed");
    // Each message counted once, where it was handled: at least the 6 of each call (INVITE,
    // 180, 200, ACK, BYE, 200), and both workers carried a fair share (Call-ID hashing).
    const handled = () =>
      proxy.workerStats().map((s, k) => (s?.received ?? 0) - receivedBefore[k]!);
    await until("the workers' figures", () => handled().reduce((a, b) => a + b, 0) >= 18_000);
    const total = handled().reduce((a, b) => a + b, 0);
    for (const [k, n] of handled().entries()) {
      assert.ok(n >= 0.4 * total, `worker ${k} handled ${n} of ${total} messages`);
    }
  });

  test("1,000 SIPp calls over TCP (stream listeners in worker 0): 0 failed", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const { caller, callee } = await sippCalls("t1", 1000, 300, "carol");
    assert.equal(caller.failed, 0, caller.output);
    assert.equal(caller.successful, 1000);
    assert.equal(callee.successful, 1000, callee.output);
    await until("dialogs to end", () => proxy.calls === 0, 10_000);
  });

  test("a UDP phone calls a phone registered over TCP, and back; 20 calls each way", async () => {
    const udpPhone = await SipPhone.start({ user: "dave", protocols: ["udp"] });
    const tcpPhone = await SipPhone.start({ user: "erin", protocols: ["tcp"] });
    try {
      assert.equal((await udpPhone.register(target("udp"))).status, 200);
      assert.equal((await tcpPhone.register(target("tcp"))).status, 200);
      const pairs: [SipPhone, "udp" | "tcp", string][] = [
        [udpPhone, "udp", `sip:erin@${DOMAIN}`],
        [tcpPhone, "tcp", `sip:dave@${DOMAIN}`],
      ];
      for (const [phone, protocol, uri] of pairs) {
        for (let i = 0; i < 20; i++) {
          // Fresh Call-IDs land on either worker (steering hashes them).
          const { outgoing, response } = await phone.call(target(protocol), uri);
          assert.equal(response.status, 200, `call ${i} from ${phone.user}`);
          const dialog = callerDialog(outgoing.request, response);
          assert.ok(dialog.routes.length > 0, "the proxy record-routed");
          await phone.ack(dialog);
          const bye = await phone.inDialog(dialog, "BYE").final;
          assert.equal(bye.status, 200, `BYE of call ${i} from ${phone.user}`);
        }
      }
      await until("dialogs to end", () => proxy.calls === 0, 10_000);
    } finally {
      await udpPhone.stop();
      await tcpPhone.stop();
    }
  });

  test("registrations made on any worker are one location service", async () => {
    const phone = await SipPhone.start({ user: "frank" });
    try {
      const before = proxy.report().registrations;
      const users: string[] = [];
      // Each REGISTER has its own Call-ID, so they reach different workers.
      for (let i = 0; i < 10; i++) {
        const user = `u${nextId()}`;
        users.push(user);
        const ok = await phone.register(target("udp"), {
          user,
          contact: `sip:${user}@127.0.0.1:${phone.port()}`,
        });
        assert.equal(ok.status, 200);
      }
      // Each user is found whichever worker a request for it reaches (the phone answers 200).
      for (const user of users) {
        for (let i = 0; i < 4; i++) {
          const request = newRequest("OPTIONS", `sip:${user}@${DOMAIN}`);
          const answer = await phone.send(request, target("udp")).final;
          assert.equal(answer.status, 200, `OPTIONS for ${user} reached its binding`);
        }
      }
      assert.equal(
        (await phone.send(newRequest("OPTIONS", `sip:nobody@${DOMAIN}`), target("udp")).final)
          .status,
        404,
      );
      // The primary counts them from the same store (refreshed every second).
      await until("the registrations to be counted", () => {
        return proxy.report().registrations >= before + 10;
      });
    } finally {
      await phone.stop();
    }
  });

  test("drain: every worker answers new calls with 503; undrain restores them", async () => {
    const caller = await SipPhone.start({ user: "gina" });
    const callee = await SipPhone.start({ user: "hank" });
    try {
      assert.equal((await callee.register(target("udp"))).status, 200);
      proxy.drain();
      assert.equal(proxy.report().state, "draining");
      // The workers hear of it over IPC: OPTIONS (fresh Call-IDs, so both workers) says so.
      const allWorkersAnswer = async (status: number): Promise<void> => {
        const uri = `sip:127.0.0.1:${port("udp")}`;
        const deadline = Date.now() + 5000;
        for (;;) {
          const sent = Array.from({ length: 8 }, () =>
            caller.send(newRequest("OPTIONS", uri), target("udp")),
          );
          const answers = await Promise.all(sent.map(async (o) => (await o.final).status));
          if (answers.every((s) => s === status)) return;
          assert.ok(Date.now() < deadline, `every worker answers OPTIONS with ${status}`);
        }
      };
      await allWorkersAnswer(503);
      for (let i = 0; i < 6; i++) {
        const refused = await caller.call(target("udp"), `sip:hank@${DOMAIN}`);
        assert.equal(refused.response.status, 503, "a draining proxy takes no new call");
        assert.ok(refused.response.getHeader("retry-after") !== undefined);
      }
      proxy.undrain();
      assert.equal(proxy.report().state, "active");
      await allWorkersAnswer(200);
      for (let i = 0; i < 6; i++) {
        const { outgoing, response } = await caller.call(target("udp"), `sip:hank@${DOMAIN}`);
        assert.equal(response.status, 200);
        const dialog = callerDialog(outgoing.request, response);
        await caller.ack(dialog);
        assert.equal((await caller.inDialog(dialog, "BYE").final).status, 200);
      }
    } finally {
      await caller.stop();
      await callee.stop();
    }
  });

  test("a worker that dies is replaced and calls go on", async () => {
    const caller = await SipPhone.start({ user: "ivan" });
    const callee = await SipPhone.start({ user: "judy" });
    try {
      assert.equal((await callee.register(target("udp"))).status, 200);
      const victim = proxy.workerPids[1]!;
      process.kill(victim, "SIGKILL");
      await until(
        "a new worker 1",
        () => {
          const pid = proxy.workerPids[1]!;
          return pid !== 0 && pid !== victim;
        },
        15_000,
      );
      // Give the new worker its peers before counting on it.
      await until("the new worker to report", () => proxy.report().state === "active");
      for (let i = 0; i < 10; i++) {
        const { outgoing, response } = await caller.call(target("udp"), `sip:judy@${DOMAIN}`);
        assert.equal(response.status, 200, `call ${i} after the restart`);
        const dialog = callerDialog(outgoing.request, response);
        await caller.ack(dialog);
        assert.equal((await caller.inDialog(dialog, "BYE").final).status, 200);
      }
    } finally {
      await caller.stop();
      await callee.stop();
    }
  });

  test("a call set up before its worker died is ended by a BYE through the new worker", async () => {
    const caller = await SipPhone.start({ user: "leo" });
    const callee = await SipPhone.start({ user: "mia" });
    try {
      assert.equal((await callee.register(target("udp"))).status, 200);
      const { outgoing, response } = await caller.call(target("udp"), `sip:mia@${DOMAIN}`);
      assert.equal(response.status, 200);
      const dialog = callerDialog(outgoing.request, response);
      await caller.ack(dialog);
      // The worker whose own port the Record-Route names holds the dialog.
      const routePort = Number(/:(\d+)[;>]/.exec(dialog.routes[0]!)?.[1]);
      const owner = proxy.workerPorts.findIndex((ports) => ports.includes(routePort));
      assert.ok(owner >= 0, `${dialog.routes[0]} names a worker's own port`);
      const victim = proxy.workerPids[owner]!;
      process.kill(victim, "SIGKILL");
      await until(
        "the worker to be back",
        () => proxy.workerPids[owner] !== victim && proxy.workerStats()[owner] !== undefined,
        15_000,
      );
      const bye = await caller.inDialog(dialog, "BYE").final;
      assert.equal(bye.status, 200, "the BYE reached the callee through the new worker");
      assert.equal(callee.requestsOf("BYE").length, 1);
    } finally {
      await caller.stop();
      await callee.stop();
    }
  });

  test("a worker started again while the proxy drains drains too", async () => {
    const phone = await SipPhone.start({ user: "kate" });
    try {
      proxy.drain();
      const victim = proxy.workerPids[0]!;
      process.kill(victim, "SIGKILL");
      await until(
        "a new worker 0 that reports",
        () => proxy.workerPids[0] !== victim && proxy.workerStats()[0] !== undefined,
        15_000,
      );
      // Fresh Call-IDs reach both workers: every OPTIONS is refused.
      const uri = `sip:127.0.0.1:${port("udp")}`;
      const answers = await Promise.all(
        Array.from({ length: 12 }, async () => {
          const sent = phone.send(newRequest("OPTIONS", uri), target("udp"));
          return (await sent.final).status;
        }),
      );
      assert.deepEqual(new Set(answers), new Set([503]));
    } finally {
      proxy.undrain();
      await phone.stop();
    }
  });
});

const CLI = join(PROJECT_ROOT, "dist", "src", "cli", "main.js");

/** `sipsteer proxy` with `workers: 2`; its JSON line; its exit. Always reaped with its workers. */
async function withCliCluster(
  body: (info: { pid: number; workers: number[]; http: string }, cli: CliProcess) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "sipsteer-cluster-"));
  const file = join(dir, "proxy.yaml");
  writeFileSync(
    file,
    [
      "id: c9",
      `domains: [${DOMAIN}]`,
      "workers: 2",
      "listen:",
      "  - { protocol: udp, address: 127.0.0.1, port: 0 }",
      "  - { protocol: tcp, address: 127.0.0.1, port: 0 }",
      `allowedDestinations: ["127.0.0.0/8"]`,
      "auth: { enabled: false }",
      "http: { address: 127.0.0.1, port: 0 }",
      "",
    ].join("\n"),
  );
  const child = spawn(
    process.execPath,
    [CLI, "proxy", "--config", file, "--json", "--log-level", "warn"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stdout = "";
  let stderr = "";
  const exit = new Promise<{ code: number | null; signal: string | null }>((r) =>
    child.once("exit", (code, signal) => r({ code, signal })),
  );
  const line = new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (c: string) => {
      stdout += c;
      if (stdout.includes("\n")) resolve(stdout.slice(0, stdout.indexOf("\n")));
    });
    void exit.then(({ code }) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  let workers: number[] = [];
  try {
    const info = JSON.parse(await line) as { pid: number; workers: number[]; http: string };
    workers = info.workers;
    await body(info, { child, exit, stderr: () => stderr });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exit;
    // A worker whose primary is gone stops by itself; make sure, whatever happened.
    await until("the workers to exit", () => workers.every((pid) => !isAlive(pid)), 10_000).catch(
      () => workers.forEach((pid) => isAlive(pid) && process.kill(pid, "SIGKILL")),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}

interface CliProcess {
  readonly child: ReturnType<typeof spawn>;
  readonly exit: Promise<{ code: number | null; signal: string | null }>;
  readonly stderr: () => string;
}

describe("sipsteer proxy with workers: 2 (CLI)", () => {
  test("serves from two worker processes; SIGTERM drains, exits 0 and takes the workers along", async () => {
    await withCliCluster(async (info, cli) => {
      assert.equal(info.pid, cli.child.pid);
      assert.equal(info.workers.length, 2);
      assert.ok(info.workers.every((pid) => pid !== info.pid && isAlive(pid)));
      const load = (await (await fetch(`${info.http}/load`)).json()) as { proxy: string };
      assert.equal(load.proxy, "c9");
      cli.child.kill("SIGTERM");
      assert.deepEqual(await cli.exit, { code: 0, signal: null }, cli.stderr());
      await until("the workers to exit", () => info.workers.every((pid) => !isAlive(pid)));
    });
  });

  test("a primary killed outright (SIGKILL) leaves no worker running", async () => {
    await withCliCluster(async (info, cli) => {
      cli.child.kill("SIGKILL");
      await cli.exit;
      await until(
        "orphaned workers to stop",
        () => info.workers.every((pid) => !isAlive(pid)),
        10_000,
      );
    });
  });
});

test("a stopped cluster leaves no socket, timer or worker behind", async () => {
  const handles = await openHandles();
  assert.deepEqual(handles, {});
});
