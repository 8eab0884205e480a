// The relay keeper of `sipsteer up` (`sipsteer relays`): real rtpengines started together,
// each logging to its own file, stopped together, and one that stops unasked reported.
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import {
  RelayKeeper,
  parseRelaysConfig,
  type RelaysConfigInput,
} from "../../src/cli/up/relay-keeper.js";
import { requireRtpengine } from "../helpers/rtpengine.js";
import { freePort } from "../helpers/sipp.js";
import { alive, rtpenginePidsAt, until } from "../helpers/up.js";

/** RTP ports above the ephemeral range and freePort's, as test/helpers/rtpengine.ts. */
function rtpRange(i: number): { portMin: number; portMax: number } {
  const base = 63_000 + 200 * Math.floor(Math.random() * 5) + 100 * i;
  return { portMin: base, portMax: base + 99 };
}

describe("relay keeper", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "sipsteer-keeper-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function configOf(ids: string[], binary?: string): Promise<RelaysConfigInput> {
    return {
      ...(binary === undefined ? {} : { binary }),
      // INFO, so that the logs show each start-up.
      logLevel: 6,
      relays: await Promise.all(
        ids.map(async (id, i) => ({
          id,
          ngAddress: "127.0.0.1",
          ngPort: await freePort(),
          interfaces: ["127.0.0.1"],
          ...rtpRange(i),
          logFile: join(dir, `${id}.log`),
        })),
      ),
    };
  }

  it("a relay that cannot start (its ng port is taken) stops the one that did, and is named", async (t) => {
    if (!requireRtpengine(t)) return;
    const config = await configOf(["k1", "k2"]);
    const holder = createSocket("udp4");
    await new Promise<void>((r) => holder.bind(config.relays[1]!.ngPort, "127.0.0.1", () => r()));
    const keeper = new RelayKeeper(parseRelaysConfig(config), {
      logger: pino({ level: "silent" }),
    });
    try {
      await assert.rejects(
        keeper.start(),
        /^Error: k2: rtpengine exited before answering: .*Address already in use/,
      );
      // k1 had started, and was stopped; k2's log says why it failed.
      assert.match(readFileSync(join(dir, "k1.log"), "utf8"), /Startup complete/);
      const k1 = `127.0.0.1:${config.relays[0]!.ngPort}`;
      assert.deepEqual(rtpenginePidsAt(k1), [], `no rtpengine left on ${k1}`);
      assert.match(
        readFileSync(join(dir, "k2.log"), "utf8"),
        /CRIT: .*NG control .*Address already in use/,
      );
    } finally {
      await keeper.stop();
      holder.close();
    }
  });

  it("one that stops unasked is reported once, with its pid and log", async (t) => {
    if (!requireRtpengine(t)) return;
    const keeper = new RelayKeeper(parseRelaysConfig(await configOf(["k3", "k4"])), {
      logger: pino({ level: "silent" }),
      watchIntervalMs: 20,
    });
    let pids: number[] = [];
    try {
      const relays = await keeper.start();
      pids = relays.map((r) => r.pid);
      assert.deepEqual(
        relays.map((r) => r.id),
        ["k3", "k4"],
      );
      process.kill(relays[1]!.pid, "SIGKILL");
      const failure = await keeper.failed;
      assert.match(
        failure.message,
        new RegExp(
          `^k4 \\(rtpengine, pid ${relays[1]!.pid}\\) stopped unasked; its log: .*k4\\.log`,
        ),
      );
      await keeper.stop();
      await until("both gone", async () => pids.every((pid) => !alive(pid)));
    } finally {
      await keeper.stop();
      for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL");
    }
  });

  it("a missing binary fails naming the Debian package", async () => {
    const keeper = new RelayKeeper(
      parseRelaysConfig(await configOf(["k5"], join(dir, "nonexistent"))),
      { logger: pino({ level: "silent" }) },
    );
    try {
      await assert.rejects(
        keeper.start(),
        /k5: .*nonexistent not found \(Debian package rtpengine-daemon\)/,
      );
    } finally {
      await keeper.stop();
    }
  });
});
