// The monitor's rtpengine adapter against REAL rtpengine processes (issue 8, "Several relays,
// balanced by the monitor"): two relays on loopback, sessions made on them with the ng
// client, the monitor answering `GET /v1/select?kind=media` with the less loaded; one relay
// killed is never named once detected, and named again once restarted on its ports.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { relaySelectAnswerSchema, type RelaySelectAnswer } from "../../src/contracts/index.js";
import { NgClient, RtpengineProcess } from "../../src/media/rtpengine/index.js";
import { Monitor, type RelayListing } from "../../src/monitor/index.js";
import { eventually } from "../helpers/eventually.js";
import { openHandles } from "../helpers/handles.js";
import { requireRtpengine, startRtpengine } from "../helpers/rtpengine.js";

const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const POLL_MS = 100;
const TIMEOUT_MS = 600;

function plainSdp(port: number): string {
  return [
    "v=0",
    "o=- 1 1 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    `m=audio ${port} RTP/AVP 0`,
    "a=rtpmap:0 PCMU/8000",
    "a=sendrecv",
    "",
  ].join("\r\n");
}

/** `n` sessions (offers) on a relay; their Call-IDs. */
async function openSessions(client: NgClient, prefix: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const callId = `${prefix}-${i}`;
    await client.offer({ callId, fromTag: "a", sdp: plainSdp(40_000 + 2 * i) });
    ids.push(callId);
  }
  return ids;
}

async function relays(monitor: Monitor): Promise<RelayListing[]> {
  const res = await fetch(`${monitor.httpUrl}/v1/relays`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { relays: RelayListing[] }).relays;
}

function listedWhen(
  monitor: Monitor,
  ready: (byId: (id: string) => RelayListing) => boolean,
  what: string,
): Promise<RelayListing[]> {
  return eventually(
    async () => {
      const list = await relays(monitor);
      return ready((id) => list.find((r) => r.id === id)!) ? list : undefined;
    },
    10_000,
    what,
  );
}

async function selectMedia(monitor: Monitor): Promise<RelaySelectAnswer> {
  const res = await fetch(`${monitor.httpUrl}/v1/select?kind=media`);
  assert.equal(res.status, 200, await res.clone().text());
  return relaySelectAnswerSchema.parse(await res.json());
}

describe("rtpengine adapter: real rtpengine relays balanced by the monitor", () => {
  it("answers the less-loaded relay; a killed relay is never named once detected; restarted, it is eligible again", async (t) => {
    if (!requireRtpengine(t)) return;
    let r1: RtpengineProcess | undefined;
    let r2: RtpengineProcess | undefined;
    let c1: NgClient | undefined;
    let c2: NgClient | undefined;
    let monitor: Monitor | undefined;
    try {
      r1 = await startRtpengine();
      r2 = await startRtpengine();
      monitor = new Monitor({
        http: { address: "127.0.0.1", port: 0 },
        allowedDestinations: LOOPBACK,
        table: { probeThreshold: 2 },
        relays: [
          // r1 has a session capacity; r2 none, so its ports in use are its workload.
          {
            id: "r1",
            ng: r1.ngEndpoint,
            capacity: { sessions: 10 },
            pollIntervalMs: POLL_MS,
            pollTimeoutMs: TIMEOUT_MS,
          },
          { id: "r2", ng: r2.ngEndpoint, pollIntervalMs: POLL_MS, pollTimeoutMs: TIMEOUT_MS },
        ],
      });
      await monitor.start();
      const idle = await listedWhen(
        monitor,
        (r) => r("r1").eligible && r("r2").eligible,
        "both relays eligible",
      );
      for (const r of idle) {
        assert.equal(r.sessions, 0);
        assert.equal(r.workload, 0);
        assert.equal(r.ports?.total, 200);
        assert.ok(r.latency_ms !== null && r.latency_ms >= 0);
      }

      // Three sessions on r1: 3/10; r2 is idle and chosen.
      c1 = new NgClient({ address: "127.0.0.1", port: r1.options.ngPort });
      c2 = new NgClient({ address: "127.0.0.1", port: r2.options.ngPort });
      await c1.start();
      await c2.start();
      await openSessions(c1, "on-r1", 3);
      await listedWhen(monitor, (r) => r("r1").workload === 0.3, "r1 at 3/10");
      let answer = await selectMedia(monitor);
      assert.equal(answer.relay, "r2");
      assert.equal(answer.ng, r2.ngEndpoint);
      assert.deepEqual(answer.alternates, [{ relay: "r1", ng: r1.ngEndpoint, workload: 0.3 }]);

      // Twenty sessions on r2: 80 of its 200 ports, 0.4; now r1 is the less loaded.
      await openSessions(c2, "on-r2", 20);
      const loaded = await listedWhen(monitor, (r) => r("r2").sessions === 20, "r2 with 20");
      const r2Listed = loaded.find((r) => r.id === "r2")!;
      assert.deepEqual(r2Listed.ports, { used: 80, free: 120, total: 200 });
      assert.equal(r2Listed.workload, 0.4);
      answer = await selectMedia(monitor);
      assert.equal(answer.relay, "r1");

      // r1 dies: once the monitor sees it, it is never named.
      await r1.kill();
      await listedWhen(monitor, (r) => !r("r1").eligible, "r1 not eligible after its kill");
      for (let i = 0; i < 20; i++) {
        answer = await selectMedia(monitor);
        assert.equal(answer.relay, "r2");
        assert.deepEqual(answer.alternates, []);
      }
      await listedWhen(monitor, (r) => r("r1").state === "down", "r1 down");
      const dead = (await relays(monitor)).find((r) => r.id === "r1")!;
      assert.match(dead.last_failure ?? "", /NG_TIMEOUT/);

      // Restarted on its ports: eligible again, idle, and chosen.
      await c1.stop();
      r1 = new RtpengineProcess(r1.options);
      await r1.start();
      await listedWhen(
        monitor,
        (r) => r("r1").eligible && r("r1").sessions === 0,
        "r1 eligible after its restart",
      );
      answer = await selectMedia(monitor);
      assert.equal(answer.relay, "r1");
      assert.equal(answer.workload, 0);
    } finally {
      await monitor?.stop();
      await c1?.stop();
      await c2?.stop();
      await r1?.stop();
      await r2?.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });
});
