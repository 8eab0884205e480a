// The load report's validation (DESIGN.md "Load report"): the hand-written fast path of
// parseLoadReport against zod's loadReportSchema as the oracle. Whatever the input, the outcome
// is zod's: the same copy of a valid report, the same first issue (field and words) for one
// that is not; and the fast path never accepts what zod refuses.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  loadReportSchema,
  parseLoadReport,
  readLoadReport,
  type LoadReport,
} from "../../src/contracts/index.js";
import { report } from "../monitor/reports.js";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

/** What zod makes of `input`, in parseLoadReport's terms. */
function oracle(input: unknown): ReturnType<typeof parseLoadReport> {
  const parsed = loadReportSchema.safeParse(input);
  if (parsed.success) return { ok: true, report: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { ok: false, issue: { path: issue.path.map(String).join("."), message: issue.message } };
}

function assertAsZod(input: unknown): void {
  const expected = oracle(input);
  const got = parseLoadReport(input);
  assert.deepStrictEqual(got, expected);
  if (got.ok && expected.ok) {
    // Same keys in the same order (what JSON answers show).
    assert.equal(JSON.stringify(got.report), JSON.stringify(expected.report));
    assert.notEqual(got.report, input, "a copy, not the input");
  }
  const fast = readLoadReport(input);
  if (fast !== undefined) {
    assert.ok(expected.ok, "the fast path accepted what zod refuses");
    assert.deepStrictEqual(fast, expected.report);
  }
}

const count = fc.oneof(fc.nat(), fc.maxSafeNat());
const amount = fc.oneof(fc.nat(1000), fc.double({ min: 0, max: 64, noNaN: true }));
const id = fc.oneof(
  fc.string({ minLength: 1, maxLength: 64 }),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }),
);
const uri = fc.string({ minLength: 1, maxLength: 40 });

const validReport: fc.Arbitrary<LoadReport> = fc.record({
  v: fc.constant(1 as const),
  proxy: id,
  boot: id,
  seq: count,
  at: count,
  interval: fc.integer({ min: 1, max: 60_000 }),
  state: fc.constantFrom("active" as const, "draining" as const),
  calls: count,
  registrations: count,
  transactions: count,
  media: count,
  cps: amount,
  cpu: amount,
  elu: fc.double({ min: 0, max: 1, noNaN: true }),
  store: fc.constantFrom("ok" as const, "degraded" as const, "down" as const),
  capacity: fc.record({ calls: count, media: count }),
  uris: fc.record(
    { udp: uri, tcp: uri, tls: uri, ws: uri, wss: uri },
    { requiredKeys: [] },
  ) as fc.Arbitrary<LoadReport["uris"]>,
});

/** Values at and past every rule's edge, and of every type. */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    -1,
    -0,
    0,
    0.5,
    1,
    1.5,
    -1.5,
    2,
    2 ** 53 - 1,
    2 ** 53,
    -(2 ** 53),
    Number.MIN_VALUE,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    "",
    "1",
    "active",
    "ok",
    "x".repeat(64),
    "x".repeat(65),
    "😀".repeat(32),
    "😀".repeat(33),
    "😀".repeat(64),
    "😀".repeat(65),
    "\ud800".repeat(65),
    null,
    undefined,
    true,
    [],
    {},
    { calls: 1, media: 1 },
  ),
  fc.anything(),
  fc.jsonValue(),
);

const FIELDS = Object.keys(loadReportSchema.shape) as (keyof LoadReport)[];
const NESTED = [
  ["capacity", "calls"],
  ["capacity", "media"],
  ["uris", "udp"],
  ["uris", "tcp"],
  ["uris", "tls"],
  ["uris", "ws"],
  ["uris", "wss"],
] as const;

type Mutation =
  | { kind: "set"; field: string; value: unknown }
  | { kind: "delete"; field: string }
  | { kind: "nested"; field: (typeof NESTED)[number]; value: unknown }
  | { kind: "extra"; field: string; value: unknown };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("set" as const),
    field: fc.constantFrom(...FIELDS),
    value: oddValue,
  }),
  fc.record({ kind: fc.constant("delete" as const), field: fc.constantFrom(...FIELDS) }),
  fc.record({
    kind: fc.constant("nested" as const),
    field: fc.constantFrom(...NESTED),
    value: oddValue,
  }),
  fc.record({ kind: fc.constant("extra" as const), field: fc.string(), value: oddValue }),
);

function mutate(report: LoadReport, mutations: readonly Mutation[]): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ...report,
    capacity: { ...report.capacity },
    uris: { ...report.uris },
  };
  for (const m of mutations) {
    if (m.kind === "set" || m.kind === "extra") out[m.field] = m.value;
    else if (m.kind === "delete") delete out[m.field];
    else {
      const [outer, inner] = m.field;
      const nested = out[outer];
      if (typeof nested === "object" && nested !== null) {
        (nested as Record<string, unknown>)[inner] = m.value;
      }
    }
  }
  return out;
}

describe("load report validation (fast-check, zod as the oracle)", () => {
  test(`valid reports: the fast path takes them and copies them as zod does (seed ${SEED})`, () => {
    fc.assert(
      fc.property(validReport, (report) => {
        assertAsZod(report);
        const fast = readLoadReport(report);
        // Ids of up to 64 code points may be longer in UTF-16 units: zod alone takes those.
        if (report.proxy.length <= 64 && report.boot.length <= 64) assert.ok(fast !== undefined);
      }),
      { numRuns: 2000, seed: SEED },
    );
  });

  test(`damaged reports: the same refusal as zod's, field and words (seed ${SEED})`, () => {
    fc.assert(
      fc.property(validReport, fc.array(mutation, { minLength: 1, maxLength: 4 }), (r, ms) =>
        assertAsZod(mutate(r, ms)),
      ),
      { numRuns: 5000, seed: SEED },
    );
  });

  test(`any value at all is answered as zod answers it (seed ${SEED})`, () => {
    fc.assert(fc.property(oddValue, assertAsZod), { numRuns: 2000, seed: SEED });
  });

  test("refusals name the field as zod does", () => {
    const good: LoadReport = report("p1", { boot: "b1", uris: { udp: "sip:p1.test:5060" } });
    const cases: [unknown, string, string][] = [
      [null, "", "Invalid input: expected object, received null"],
      [[good], "", "Invalid input: expected object, received array"],
      [{ ...good, v: 2 }, "v", "Invalid input: expected 1"],
      [{ ...good, proxy: "" }, "proxy", "Too small: expected string to have >=1 characters"],
      [{ ...good, seq: -1 }, "seq", "Too small: expected number to be >=0"],
      [{ ...good, seq: 1.5 }, "seq", "Invalid input: expected int, received number"],
      [{ ...good, interval: 0 }, "interval", "Too small: expected number to be >0"],
      [{ ...good, state: "gone" }, "state", 'Invalid option: expected one of "active"|"draining"'],
      [{ ...good, elu: 1.5 }, "elu", "Too big: expected number to be <=1"],
      [
        { ...good, capacity: { calls: 1 } },
        "capacity.media",
        "Invalid input: expected number, received undefined",
      ],
      [
        { ...good, uris: { ws: "" } },
        "uris.ws",
        "Too small: expected string to have >=1 characters",
      ],
    ];
    for (const [input, path, message] of cases) {
      assert.deepStrictEqual(parseLoadReport(input), { ok: false, issue: { path, message } });
      assertAsZod(input);
    }
    // Extra fields are dropped, an optional URI given as undefined is kept, as zod does.
    const parsed = parseLoadReport({
      ...good,
      extra: 1,
      uris: { udp: "u", tcp: undefined, x: "y" },
    });
    assert.ok(parsed.ok);
    assert.deepStrictEqual(parsed.report, { ...good, uris: { udp: "u", tcp: undefined } });
  });
});
