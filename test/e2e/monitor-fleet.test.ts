// The monitor against a fleet of real `sipsteer proxy` PROCESSES (issue 5, proof): every
// collection mode (push over HTTP and UDP, poll, stream, on-query) feeds it; a proxy killed
// with SIGKILL stops being chosen once it is stale and is taken back at once when it restarts
// (new boot); and a burst of 3,000 selects between two reports over capacities 100/200/300 is
// spread by spare capacity, where the `literal` policy herds it onto one proxy.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Monitor, type MonitorConfigInput, type ProxyListing } from "../../src/monitor/index.js";
import { reap, runCli, within, type CliRun } from "../helpers/cli.js";
import { eventually } from "../helpers/eventually.js";
import { freePort } from "../helpers/sipp.js";

const DOMAIN = "sipsteer.test";
const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const KEY = { id: "k1", secret: "a-shared-report-secret" };

interface ProxyProcess {
  readonly id: string;
  readonly run: CliRun;
  readonly http: string;
}

interface ProxyOptions {
  readonly id: string;
  readonly push?: readonly string[];
  readonly intervalMs?: number;
  readonly capacityCalls?: number;
  /** Fixed HTTP port (a restart keeps its URL for poll and stream); 0 by default. */
  readonly httpPort?: number;
}

const work = mkdtempSync(join(tmpdir(), "sipsteer-fleet-"));
const running = new Set<CliRun>();

/** Starts `sipsteer proxy -c FILE --json` and waits for its JSON line. */
async function startProxy(options: ProxyOptions): Promise<ProxyProcess> {
  const file = join(work, `${options.id}-${running.size}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      id: options.id,
      domains: [DOMAIN],
      listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
      allowedDestinations: LOOPBACK,
      auth: { enabled: false },
      capacity: { calls: options.capacityCalls ?? 0 },
      http: { address: "127.0.0.1", port: options.httpPort ?? 0 },
      report: {
        intervalMs: options.intervalMs ?? 250,
        push: options.push ?? [],
        ...(options.push === undefined ? {} : { key: KEY }),
      },
    }),
  );
  const run = runCli(["proxy", "-c", file, "--json", "--log-level", "warn"]);
  running.add(run);
  const line = await within(run.firstLine, 15_000);
  assert.ok(line !== undefined, `${options.id} serving within 15 s: ${run.stderr}`);
  const info = JSON.parse(line) as { http: string };
  return { id: options.id, run, http: info.http };
}

async function kill(proxy: ProxyProcess): Promise<void> {
  proxy.run.child.kill("SIGKILL");
  await within(proxy.run.exit, 5000);
  running.delete(proxy.run);
}

async function listing(monitor: Monitor): Promise<Map<string, ProxyListing>> {
  const res = await fetch(`${monitor.httpUrl}/v1/proxies`);
  const body = (await res.json()) as { proxies: ProxyListing[] };
  return new Map(body.proxies.map((p) => [p.id, p]));
}

/** The proxy a select names, or undefined on 503. */
async function select(monitor: Monitor): Promise<string | undefined> {
  const res = await fetch(`${monitor.httpUrl}/v1/select?transport=udp`);
  if (res.status !== 200) {
    await res.body?.cancel();
    return undefined;
  }
  return ((await res.json()) as { proxy: string }).proxy;
}

function allEligible(monitor: Monitor, ids: readonly string[]) {
  return async () => {
    const table = await listing(monitor);
    return ids.every((id) => table.get(id)?.eligible === true) ? table : undefined;
  };
}

function monitorConfig(
  httpPort: number,
  extra: Partial<MonitorConfigInput> = {},
): MonitorConfigInput {
  return {
    http: { address: "127.0.0.1", port: httpPort },
    keys: [KEY],
    allowedDestinations: LOOPBACK,
    ...extra,
  };
}

after(() => {
  for (const run of running) reap(run);
  rmSync(work, { recursive: true, force: true });
});

describe("monitor with a fleet of proxy processes", () => {
  test("every collection mode: pushes over HTTP and UDP, poll, stream and on-query proxies are all eligible with their mode and all chosen", async () => {
    const httpPort = await freePort();
    const udpPort = await freePort();
    const base = `http://127.0.0.1:${httpPort}`;
    const pushHttp = await startProxy({ id: "push-http", push: [`${base}/v1/reports`] });
    const pushUdp = await startProxy({ id: "push-udp", push: [`udp://127.0.0.1:${udpPort}`] });
    // No pushes: only the monitor's requests make reports for these three.
    const polled = await startProxy({ id: "polled", intervalMs: 60_000 });
    const streamed = await startProxy({ id: "streamed" });
    const onQuery = await startProxy({ id: "on-query", intervalMs: 60_000 });
    const monitor = new Monitor(
      monitorConfig(httpPort, {
        udpPush: { address: "127.0.0.1", port: udpPort },
        proxies: [
          "push-http",
          "push-udp",
          { id: "polled", http: polled.http, modes: ["poll"] },
          { id: "streamed", http: streamed.http, modes: ["stream"] },
          { id: "on-query", http: onQuery.http, modes: ["on-query"], onQueryMaxAgeMs: 300 },
        ],
      }),
    );
    await monitor.start();
    try {
      const ids = ["push-http", "push-udp", "polled", "streamed"];
      const table = await eventually(allEligible(monitor, ids), 10_000, "four eligible");
      assert.equal(table.get("push-http")!.collection, "push");
      assert.equal(table.get("push-http")!.pushed_over, "http");
      assert.equal(table.get("push-udp")!.collection, "push");
      assert.equal(table.get("push-udp")!.pushed_over, "udp");
      assert.equal(table.get("polled")!.collection, "poll");
      assert.equal(table.get("streamed")!.collection, "stream");

      // The on-query proxy has no report until a client asks; the first select fetches it.
      const first = await select(monitor);
      assert.ok(first !== undefined, "a select is answered");
      const after = await listing(monitor);
      assert.equal(after.get("on-query")!.collection, "on-query");
      assert.equal(after.get("on-query")!.eligible, true);
      // Every one is chosen: a proxy polled just after its start may report the tail of its
      // start-up work for a report or two, so this keeps asking for a while.
      const chosen = new Map<string, number>();
      await eventually(
        async () => {
          const proxy = await select(monitor);
          if (proxy !== undefined) chosen.set(proxy, (chosen.get(proxy) ?? 0) + 1);
          return [...ids, "on-query"].every((id) => chosen.has(id)) ? true : undefined;
        },
        10_000,
        "every proxy chosen",
        5,
      );
      assert.ok(monitor.collectorCounters().polls > 0, "on-query fetched");
    } finally {
      await monitor.stop();
      for (const p of [pushHttp, pushUdp, polled, streamed, onQuery]) await kill(p);
    }
  });

  test("failover: a SIGKILLed proxy stops being chosen once stale; restarted, it is eligible again at once", async () => {
    const httpPort = await freePort();
    const push = [`http://127.0.0.1:${httpPort}/v1/reports`];
    const proxies = await Promise.all(["p1", "p2", "p3"].map((id) => startProxy({ id, push })));
    const monitor = new Monitor(monitorConfig(httpPort, { proxies: ["p1", "p2", "p3"] }));
    await monitor.start();
    let restarted: ProxyProcess | undefined;
    try {
      await eventually(allEligible(monitor, ["p1", "p2", "p3"]), 10_000, "three eligible");
      await kill(proxies[1]!);
      // Stale after 3 missed 250 ms pushes; the bound here is loose on purpose.
      await eventually(
        async () => ((await listing(monitor)).get("p2")?.state === "stale" ? true : undefined),
        10_000,
        "p2 stale",
      );
      for (let i = 0; i < 60; i++) assert.notEqual(await select(monitor), "p2");
      assert.equal((await listing(monitor)).get("p2")!.eligible, false);

      restarted = await startProxy({ id: "p2", push });
      const table = await eventually(allEligible(monitor, ["p1", "p2", "p3"]), 10_000, "p2 back");
      assert.notEqual(table.get("p2")!.boot, null);
      // A fresh process reports a busy event loop at first (start-up work), so it may take
      // a few reports before it is the least loaded; chosen it must be, soon.
      await eventually(
        async () => ((await select(monitor)) === "p2" ? true : undefined),
        10_000,
        "the restarted p2 chosen again",
      );
    } finally {
      await monitor.stop();
      for (const p of [proxies[0]!, proxies[2]!, ...(restarted ? [restarted] : [])]) await kill(p);
    }
  });

  describe("herd: 3,000 selects between two reports over capacities 100/200/300", () => {
    let spread: Monitor;
    let literal: Monitor;
    const fleet: ProxyProcess[] = [];
    const ids = ["small", "medium", "large"];

    before(async () => {
      const [spreadPort, literalPort] = [await freePort(), await freePort()];
      spread = new Monitor(monitorConfig(spreadPort));
      literal = new Monitor(monitorConfig(literalPort, { select: { policy: "literal" } }));
      await spread.start();
      await literal.start();
      // One report each at start, the next a minute later: every select below falls between.
      const push = [`${spread.httpUrl}/v1/reports`, `${literal.httpUrl}/v1/reports`];
      for (const [i, id] of ids.entries()) {
        fleet.push(
          await startProxy({ id, push, intervalMs: 60_000, capacityCalls: 100 * (i + 1) }),
        );
      }
      await eventually(allEligible(spread, ids), 10_000, "three eligible (spread)");
      await eventually(allEligible(literal, ids), 10_000, "three eligible (literal)");
    });

    after(async () => {
      await spread?.stop();
      await literal?.stop();
      for (const p of fleet) await kill(p);
    });

    async function burst(monitor: Monitor): Promise<Map<string, number>> {
      const counts = new Map<string, number>();
      for (let i = 0; i < 3000; i += 50) {
        const batch = await Promise.all(Array.from({ length: 50 }, () => select(monitor)));
        for (const proxy of batch) {
          assert.ok(proxy !== undefined, "every select answered");
          counts.set(proxy, (counts.get(proxy) ?? 0) + 1);
        }
      }
      return counts;
    }

    test("least-loaded: shares follow spare capacity, 500 / 1,000 / 1,500 ± 10%", async () => {
      const counts = await burst(spread);
      const table = await listing(spread);
      for (const id of ids) assert.equal(table.get(id)!.seq, 0, `${id}: still its first report`);
      for (const [i, id] of ids.entries()) {
        const expected = 500 * (i + 1);
        const got = counts.get(id) ?? 0;
        assert.ok(
          Math.abs(got - expected) <= expected * 0.1,
          `${id}: ${got}, expected ${expected}`,
        );
      }
    });

    test("literal: the requirement read literally sends the whole burst to one proxy", async () => {
      const counts = await burst(literal);
      assert.equal(counts.size, 1, `one proxy took all: ${[...counts]}`);
      assert.equal([...counts.values()][0], 3000);
    });
  });
});
