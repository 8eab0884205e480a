import type { LoadReport } from "../../src/contracts/index.js";
import { ProxyTable, type ProxyTableConfigInput } from "../../src/monitor/index.js";
import { FakeClock } from "../helpers/fake-clock.js";

/** The monitor's wall clock at fake-clock time 0. */
export const WALL_AT_0 = 1_800_000_000_000;

/** A valid, idle load report of `proxy` made now (by the fake wall clock). */
export function report(proxy: string, fields: Partial<LoadReport> = {}): LoadReport {
  return {
    v: 1,
    proxy,
    boot: "boot-1",
    seq: 1,
    at: WALL_AT_0,
    interval: 250,
    state: "active",
    calls: 0,
    registrations: 0,
    transactions: 0,
    media: 0,
    cps: 0,
    cpu: 0,
    elu: 0,
    store: "ok",
    capacity: { calls: 0, media: 0 },
    uris: { udp: `sip:${proxy}.test:5060`, tcp: `sip:${proxy}.test:5060;transport=tcp` },
    ...fields,
  };
}

/** A table on a fake clock whose wall clock moves with it. */
export function tableOnFakeClock(config: ProxyTableConfigInput = {}): {
  clock: FakeClock;
  table: ProxyTable;
  wall: () => number;
} {
  const clock = new FakeClock();
  const wall = (): number => WALL_AT_0 + clock.now();
  const table = new ProxyTable({ config, clock, wallNow: wall });
  return { clock, table, wall };
}

/** A small deterministic generator (mulberry32) in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
