// Issue 5's proof with real peers: "Three sipsteer proxies and one real Kamailio (polled over
// JSON-RPC) under SIPp load: the monitor's answers follow their real workload." Three sipsteer
// proxies push signed reports; a real Kamailio is polled over JSON-RPC; SIPp holds calls first
// through Kamailio, then through one sipsteer proxy, and /v1/select steers away from whichever
// is loaded and back to it once its calls are over.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { SigningKey } from "../../src/contracts/index.js";
import { Monitor, type ProxyListing, type SelectAnswer } from "../../src/monitor/index.js";
import { Proxy } from "../../src/proxy/index.js";
import {
  DOMAIN,
  assertAllCalls,
  holdCalls,
  registerContact,
  startCallee,
} from "../helpers/held-calls.js";
import { startKamailio, type KamailioRun } from "../helpers/kamailio.js";
import type { SippRun } from "../helpers/sipp.js";
import { requireTool } from "../helpers/tools.js";
import { eventually } from "../helpers/eventually.js";

const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const KEY: SigningKey = { id: "key1", secret: "a-shared-report-secret" };
/** Calls each sipsteer proxy holds at full load. */
const SIPSTEER_CAPACITY = 20;
/** Calls Kamailio holds at full load (from the monitor's config: Kamailio reports none). */
const KAMAILIO_CAPACITY = 10;
const KAMAILIO_CALLS = 6;
const P1_CALLS = 14;
/** Selects per check, spaced so that the proxies' reports keep up with them. */
const SELECTS = 12;

async function proxies(monitor: Monitor): Promise<Map<string, ProxyListing>> {
  const res = await fetch(`${monitor.httpUrl}/v1/proxies`);
  const body = (await res.json()) as { proxies: ProxyListing[] };
  return new Map(body.proxies.map((p) => [p.id, p]));
}

/** The listings once `ready` holds for all of them together. */
function listedWhen(
  monitor: Monitor,
  ready: (all: Map<string, ProxyListing>) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<Map<string, ProxyListing>> {
  return eventually(
    async () => {
      const all = await proxies(monitor);
      return ready(all) ? all : undefined;
    },
    timeoutMs,
    what,
  );
}

/** `SELECTS` answers of /v1/select, 50 ms apart. */
async function selects(monitor: Monitor): Promise<SelectAnswer[]> {
  const answers: SelectAnswer[] = [];
  for (let i = 0; i < SELECTS; i++) {
    const res = await fetch(`${monitor.httpUrl}/v1/select`);
    assert.equal(res.status, 200);
    answers.push((await res.json()) as SelectAnswer);
    await new Promise((r) => setTimeout(r, 50));
  }
  return answers;
}

const workload = (all: Map<string, ProxyListing>, id: string): number => all.get(id)?.workload ?? 1;
const SIPSTEER = ["p1", "p2", "p3"];

function udpAddress(proxy: Proxy): string {
  const l = proxy.listeners.find((x) => x.protocol === "udp")!;
  return `127.0.0.1:${l.port}`;
}

describe("e2e: three sipsteer proxies and a real Kamailio under SIPp load", () => {
  test("the monitor's answers follow their real workload: away from Kamailio while it holds calls, away from a loaded sipsteer proxy, back to Kamailio when its calls are over", async (t) => {
    if (!requireTool(t, "kamailio", "kamailio") || !requireTool(t, "sipp", "sip-tester")) return;
    const fleet: Proxy[] = [];
    const sipp: SippRun[] = [];
    let kamailio: KamailioRun | undefined;
    let monitor: Monitor | undefined;
    try {
      const kamailioCallee = await startCallee(KAMAILIO_CALLS);
      sipp.push(kamailioCallee);
      kamailio = await startKamailio({ callee: `sip:127.0.0.1:${kamailioCallee.port}` });
      monitor = new Monitor({
        http: { address: "127.0.0.1", port: 0 },
        keys: [KEY],
        allowedDestinations: LOOPBACK,
        proxies: [
          ...SIPSTEER,
          {
            id: "k1",
            adapter: "kamailio",
            rpc: kamailio.rpc,
            capacity: { calls: KAMAILIO_CAPACITY },
            uris: { udp: kamailio.sipUri },
            pollIntervalMs: 200,
          },
        ],
      });
      await monitor.start();
      const m = monitor;
      for (const id of SIPSTEER) {
        const proxy = new Proxy({
          id,
          domains: [DOMAIN],
          listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
          allowedDestinations: LOOPBACK,
          auth: { enabled: false },
          http: { address: "127.0.0.1", port: 0 },
          capacity: { calls: SIPSTEER_CAPACITY, media: 0 },
          report: { intervalMs: 250, push: [`${m.httpUrl}/v1/reports`], key: KEY },
        });
        fleet.push(proxy);
        await proxy.start();
      }
      const [p1] = fleet as [Proxy];

      // Idle: all four eligible and lightly loaded (a proxy's first report counts its start).
      await listedWhen(
        m,
        (all) =>
          ["k1", ...SIPSTEER].every(
            (id) => all.get(id)?.eligible === true && workload(all, id) < 0.3,
          ),
        "every proxy eligible and idle",
      );

      // Kamailio holds calls: its workload is calls/capacity, above the idle sipsteer proxies.
      const kamailioCalls = await holdCalls({
        remote: `127.0.0.1:${kamailio.sipPort}`,
        user: "bob",
        calls: KAMAILIO_CALLS,
        holdMs: 8000,
      });
      sipp.push(kamailioCalls);
      const kLoaded = await listedWhen(
        m,
        (all) =>
          all.get("k1")?.calls === KAMAILIO_CALLS &&
          SIPSTEER.every((id) => workload(all, id) < KAMAILIO_CALLS / KAMAILIO_CAPACITY - 0.2),
        `Kamailio holding ${KAMAILIO_CALLS} calls, the sipsteer proxies idle`,
      );
      assert.equal(kLoaded.get("k1")!.workload, KAMAILIO_CALLS / KAMAILIO_CAPACITY);
      for (const answer of await selects(m)) {
        assert.notEqual(answer.proxy, "k1", JSON.stringify(answer));
        // Ranked by workload: the loaded Kamailio is the last alternate.
        assert.equal(answer.alternates.at(-1)?.proxy, "k1", JSON.stringify(answer));
      }

      // Now p1 holds calls, longer than Kamailio's, which end meanwhile.
      const p1Callee = await startCallee(P1_CALLS);
      sipp.push(p1Callee);
      await registerContact(udpAddress(p1), "carol", p1Callee.port);
      const p1Calls = await holdCalls({
        remote: udpAddress(p1),
        user: "carol",
        calls: P1_CALLS,
        holdMs: 20_000,
      });
      sipp.push(p1Calls);
      const p1Loaded = await listedWhen(
        m,
        (all) =>
          all.get("p1")?.calls === P1_CALLS &&
          all.get("k1")?.calls === 0 &&
          workload(all, "k1") === 0,
        `p1 holding ${P1_CALLS} calls and Kamailio's calls over`,
        30_000,
      );
      assert.ok(workload(p1Loaded, "p1") >= P1_CALLS / SIPSTEER_CAPACITY);
      assertAllCalls(await kamailioCalls.result, KAMAILIO_CALLS, "calls through Kamailio");
      const answers = await selects(m);
      for (const answer of answers) assert.notEqual(answer.proxy, "p1", JSON.stringify(answer));
      // Idle Kamailio (workload 0, no event loop of its own in the formula) is chosen again.
      assert.ok(
        answers.some((a) => a.proxy === "k1"),
        answers.map((a) => `${a.proxy}@${a.workload}`).join(" "),
      );
      // p1 still held its calls through those answers.
      assert.equal((await proxies(m)).get("p1")?.calls, P1_CALLS);

      assertAllCalls(await p1Calls.result, P1_CALLS, "calls through p1");
      await listedWhen(
        m,
        (all) => all.get("p1")?.calls === 0 && workload(all, "p1") < 0.3,
        "p1 idle again",
      );
    } finally {
      await monitor?.stop();
      for (const run of sipp) run.kill();
      for (const proxy of fleet) await proxy.stop();
      await kamailio?.stop();
    }
  });
});
