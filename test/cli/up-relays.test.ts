// `sipsteer up` with its media relays (issue 8): one real rtpengine per proxy, started by the
// real CLI under its relay keeper, asked over ng as the monitor and the proxies will; and up
// on a machine without rtpengine, which must start all the same.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import YAML from "yaml";
import { upInfoSchema, type UpInfo } from "../../src/contracts/index.js";
import { NgClient } from "../../src/media/rtpengine/index.js";
import { reap, runCli, within, type CliRun } from "../helpers/cli.js";
import { requireRtpengine } from "../helpers/rtpengine.js";
import { alive, portFree, rtpenginePidsAt, until } from "../helpers/up.js";

const PROXY_ADDRESSES = ["127.0.0.11", "127.0.0.12", "127.0.0.13"];
const READY_MS = 60_000;
const STOP_MS = 20_000;

/**
 * RTP ranges above Linux's ephemeral range and above freePort's ports (as test/helpers/
 * rtpengine.ts does), so that no other test's socket lands in a relay's range: three ranges of
 * 1000 from a base between 61000 and 62500.
 */
function rtpBase(): number {
  return 61_000 + 500 * Math.floor(Math.random() * 4);
}

/** up on free ports, every child logging warnings only. */
function upArgs(data: string, proxies: number): string[] {
  return [
    "up",
    "--data",
    data,
    "--proxies",
    String(proxies),
    "--http-port",
    "0",
    "--dns-port",
    "0",
    "--sip-port",
    "0",
    "--proxy-sip-port",
    "0",
    "--proxy-ws-port",
    "0",
    "--proxy-http-port",
    "0",
    "--relay-ng-port",
    "0",
    "--relay-rtp-port-base",
    String(rtpBase()),
    "--log-level",
    "warn",
  ];
}

/** The `--json` line of a run, or a failure naming what up said. */
async function infoOf(run: CliRun): Promise<UpInfo> {
  const line = await within(run.firstLine, READY_MS).catch(() => undefined);
  assert.ok(line !== undefined, `a JSON line within ${READY_MS} ms: ${run.stderr}`);
  return upInfoSchema.parse(JSON.parse(line));
}

/** Asks `ng` for a pong. */
async function ping(ng: string): Promise<void> {
  const [address, port] = ng.split(":");
  const client = new NgClient({ address: address!, port: Number(port), timeoutMs: 500 });
  await client.start();
  try {
    await client.ping();
  } finally {
    await client.stop();
  }
}

describe("sipsteer up - media relays (CLI)", () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "sipsteer-up-relays-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("starts an rtpengine per proxy: --json lists 3 relays, each answers an ng ping, the children's configs name them; SIGTERM stops every rtpengine", async (t) => {
    if (!requireRtpengine(t)) return;
    const data = join(dir, "three");
    const run = runCli([...upArgs(data, 3), "--json"]);
    let pids: number[] = [];
    try {
      const info = await infoOf(run);
      assert.deepEqual(
        info.relays.map((r) => r.id),
        ["r1", "r2", "r3"],
      );
      pids = info.relays.map((r) => r.pid);
      const ngPort = Number(info.relays[0]!.ng.split(":")[1]);
      info.relays.forEach((r, i) => {
        assert.equal(r.ng, `${PROXY_ADDRESSES[i]}:${ngPort}`, "beside its proxy, one ng port");
        assert.equal(r.rtp.max - r.rtp.min, 999);
        if (i > 0) assert.equal(r.rtp.min, info.relays[i - 1]!.rtp.max + 1, "ranges apart");
        assert.deepEqual(rtpenginePidsAt(r.ng), [r.pid], `${r.id}'s pid runs rtpengine on ${r.ng}`);
      });
      await Promise.all(info.relays.map((r) => ping(r.ng)));

      // The monitor polls every relay; each proxy has its own and asks the monitor for others.
      const monitor = YAML.parse(readFileSync(join(data, "monitor.yaml"), "utf8")) as {
        relays: unknown;
      };
      assert.deepEqual(
        monitor.relays,
        info.relays.map((r) => ({
          id: r.id,
          adapter: "rtpengine",
          ng: r.ng,
          capacity: { sessions: 0 },
        })),
      );
      const p2 = YAML.parse(readFileSync(join(data, "p2.yaml"), "utf8")) as { media: unknown };
      assert.deepEqual(p2.media, {
        relay: "auto",
        relays: [{ id: "r2", ng: info.relays[1]!.ng }],
        monitors: [info.monitor.http],
      });
      for (const r of info.relays) {
        assert.ok(existsSync(join(data, "logs", `${r.id}.log`)), `${r.id} has its own log`);
      }

      run.child.kill("SIGTERM");
      const exited = await within(run.exit, STOP_MS);
      assert.deepEqual(exited, { code: 0, signal: null }, run.stderr);
      assert.deepEqual(pids.filter(alive), [], "no rtpengine left");
      for (const r of info.relays) {
        const [address, port] = r.ng.split(":");
        assert.equal(await portFree(address!, Number(port), "udp"), true, `${r.ng} is free`);
      }
    } finally {
      reap(run);
      await run.exit;
      for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL");
    }
  });

  it("a relay that dies stops up, exit 1 naming it; the summary has a line per relay", async (t) => {
    if (!requireRtpengine(t)) return;
    const run = runCli(upArgs(join(dir, "dies"), 1));
    let pids: number[] = [];
    try {
      await until(
        "the summary",
        async () => run.stdout.includes("Ctrl-C stops everything") || run.child.exitCode !== null,
        READY_MS,
      );
      const out = run.stdout;
      const relay =
        /\n {2}r1 {3}ng (127\.0\.0\.11:\d+) +pid (\d+) +RTP 127\.0\.0\.1:(\d+)–(\d+)\n/.exec(out);
      assert.ok(relay !== null, `a line for r1: ${out}${run.stderr}`);
      const rtpengine = Number(relay[2]);
      assert.equal(Number(relay[4]) - Number(relay[3]), 999);
      const monitorPid = Number(/Monitor \(pid (\d+)\)/.exec(out)?.[1]);
      const proxyPid = Number(/p1 +p1\.sipsteer\.test +pid (\d+)/.exec(out)?.[1]);
      pids = [rtpengine, monitorPid, proxyPid];
      assert.ok(pids.every(alive), "every process runs");

      process.kill(rtpengine, "SIGKILL");
      const exited = await within(run.exit, STOP_MS);
      assert.ok(exited !== undefined, `up exits when r1 dies: ${run.stderr}`);
      assert.equal(exited.code, 1, run.stderr);
      assert.match(
        run.stderr,
        new RegExp(`r1 \\(rtpengine, pid ${rtpengine}\\) stopped unasked; its log: .*r1\\.log`),
      );
      assert.match(run.stderr, /stopped every other process/);
      assert.deepEqual(pids.filter(alive), [], "the monitor and the proxy were stopped too");
    } finally {
      reap(run);
      await run.exit;
      for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL");
    }
  });

  it("up killed outright (SIGKILL): its relays stop by themselves", async (t) => {
    if (!requireRtpengine(t)) return;
    const run = runCli([...upArgs(join(dir, "killed"), 1), "--json"]);
    let pids: number[] = [];
    try {
      const info = await infoOf(run);
      assert.equal(info.relays.length, 1);
      pids = [info.relays[0]!.pid, info.monitor.pid, info.proxies[0]!.pid];
      run.child.kill("SIGKILL");
      await run.exit;
      await until("every child gone", async () => pids.every((pid) => !alive(pid)), STOP_MS);
    } finally {
      reap(run);
      await run.exit;
      for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL");
    }
  });

  it("a start-up that fails midway (a proxy cannot start, after the relays serve) stops the relays", async (t) => {
    if (!requireRtpengine(t)) return;
    const data = join(dir, "midway");
    const config = join(dir, "midway.yaml");
    // The proxies start only once the relays answer; this one then fails on its certificate.
    writeFileSync(
      config,
      "proxy: { tlsPort: 0, tls: { certFile: /nonexistent/c.pem, keyFile: /nonexistent/k.pem } }\n",
    );
    const run = runCli([...upArgs(data, 1), "-c", config, "--log-level", "info"]);
    let pids: number[] = [];
    try {
      const exited = await within(run.exit, READY_MS);
      assert.ok(exited !== undefined, `up gives up: ${run.stderr}`);
      assert.equal(exited.code, 1, run.stderr);
      assert.match(run.stderr, /p1 \(pid \d+\) exited with code 2/);
      const relays = YAML.parse(readFileSync(join(data, "relays.yaml"), "utf8")) as {
        relays: { ngAddress: string; ngPort: number }[];
      };
      const keeperLog = readFileSync(join(data, "logs", "relays.log"), "utf8");
      // The keeper's info line once r1 answered its ping.
      const served = /"relay":"r1","rtpenginePid":(\d+)[^\n]*"msg":"r1: rtpengine serving/.exec(
        keeperLog,
      );
      pids = served === null ? [] : [Number(served[1])];
      assert.equal(pids.length, 1, keeperLog);
      assert.deepEqual(pids.filter(alive), [], "r1's rtpengine is gone");
      const ng = `${relays.relays[0]!.ngAddress}:${relays.relays[0]!.ngPort}`;
      assert.deepEqual(rtpenginePidsAt(ng), [], `no rtpengine on ${ng}`);
    } finally {
      reap(run);
      await run.exit;
      for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL");
    }
  });

  it("without the rtpengine binary: up starts without relays, relays: [], and says so once naming rtpengine-daemon", async () => {
    const data = join(dir, "missing");
    const run = runCli([
      ...upArgs(data, 1),
      "--rtpengine",
      join(dir, "nonexistent", "rtpengine"),
      "--json",
    ]);
    try {
      const info = await infoOf(run);
      assert.deepEqual(info.relays, []);
      assert.equal(info.proxies.length, 1);
      assert.equal(existsSync(join(data, "relays.yaml")), false, "no relay keeper started");
      const said = run.stderr.match(/starting without media relays: .*/g) ?? [];
      assert.equal(said.length, 1, run.stderr);
      assert.match(said[0]!, /nonexistent\/rtpengine not found \(Debian package rtpengine-daemon/);
      run.child.kill("SIGTERM");
      const exited = await within(run.exit, STOP_MS);
      assert.deepEqual(exited, { code: 0, signal: null }, run.stderr);
    } finally {
      reap(run);
      await run.exit;
    }
  });
});
