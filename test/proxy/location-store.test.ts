// The location store behind the registrar, on both backends: SQLite (a file proxies of one
// host share) and Redis (proxies on several hosts), with RFC 3261 §10.3's Call-ID/CSeq rules.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test, type TestContext } from "node:test";
import { RedisLocationStore } from "../../src/proxy/location-store/redis-store.js";
import { SqliteLocationStore } from "../../src/proxy/location-store/sqlite-store.js";
import type { Binding, LocationStore } from "../../src/proxy/location-store/types.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { requireTool } from "../helpers/tools.js";

const AOR = "sip:alice@sipsteer.test";
const T0 = 1_800_000_000_000;

function binding(key: string, over: Partial<Binding> = {}): Binding {
  return {
    aor: AOR,
    key,
    contact: `sip:alice@${key}:5060`,
    params: "",
    callId: "reg-1",
    cseq: 1,
    expiresAt: 0,
    q: undefined,
    path: ["<sip:p1@127.0.0.11:5060;lr>"],
    proxy: "p1",
    userAgent: "test",
    updatedAt: 0,
    ...over,
  };
}

function register(
  store: LocationStore,
  keys: string[],
  cseq: number,
  expires = 3600,
  callId = "reg-1",
  now = T0,
) {
  return store.apply({
    aor: AOR,
    callId,
    cseq,
    now,
    changes: keys.map((k) => ({ binding: binding(k, { cseq, callId }), expires })),
  });
}

let redis: TestRedis | undefined;
let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sipsteer-store-"));
});
after(async () => {
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const backends: [
  string,
  (t: TestContext) => Promise<[LocationStore, LocationStore] | undefined>,
][] = [
  [
    "SQLite",
    async () => {
      const file = join(dir, `loc-${Math.random().toString(36).slice(2)}.sqlite`);
      return [new SqliteLocationStore(file), new SqliteLocationStore(file)];
    },
  ],
  [
    "Redis",
    async (t) => {
      if (!requireTool(t, "redis-server", "redis-server")) return undefined;
      redis ??= await startRedis();
      const prefix = `t${Math.random().toString(36).slice(2)}:`;
      return [
        new RedisLocationStore({ url: redis.url, prefix }),
        new RedisLocationStore({ url: redis.url, prefix }),
      ];
    },
  ],
];

for (const [name, make] of backends) {
  describe(`${name} location store`, () => {
    async function withStores(
      t: TestContext,
      body: (a: LocationStore, b: LocationStore) => Promise<void>,
    ) {
      const stores = await make(t);
      if (stores === undefined) return;
      const [a, b] = stores;
      await a.start();
      await b.start();
      try {
        await body(a, b);
      } finally {
        await a.stop();
        await b.stop();
      }
    }

    test("add, refresh and remove contacts; several per AOR", (t) =>
      withStores(t, async (store) => {
        const first = await register(store, ["h1", "h2"], 1);
        assert.ok(first.ok);
        assert.deepEqual(first.bindings.map((b) => b.key).sort(), ["h1", "h2"]);
        assert.equal(first.bindings[0]!.expiresAt, T0 + 3_600_000);
        assert.deepEqual(first.bindings[0]!.path, ["<sip:p1@127.0.0.11:5060;lr>"]);
        const refreshed = await register(store, ["h1"], 2, 60, "reg-1", T0 + 1000);
        assert.ok(refreshed.ok);
        assert.equal(refreshed.bindings.find((b) => b.key === "h1")!.expiresAt, T0 + 61_000);
        const removed = await register(store, ["h2"], 3, 0);
        assert.ok(removed.ok);
        assert.deepEqual(
          removed.bindings.map((b) => b.key),
          ["h1"],
        );
        assert.equal(await store.count(T0), 1);
      }));

    test("the same Call-ID may only move forward (RFC 3261 §10.3 step 7)", (t) =>
      withStores(t, async (store) => {
        assert.ok((await register(store, ["h1"], 5)).ok);
        assert.deepEqual(await register(store, ["h1", "h9"], 5), {
          ok: false,
          reason: "out-of-order",
        });
        assert.deepEqual(await register(store, ["h1"], 4), { ok: false, reason: "out-of-order" });
        const lookup = await store.lookup(AOR, T0);
        assert.deepEqual(
          lookup.map((b) => b.key),
          ["h1"],
          "a refused update changed nothing",
        );
        assert.ok(
          (await register(store, ["h1"], 1, 3600, "another-call-id")).ok,
          "another Call-ID replaces",
        );
      }));

    test("Contact: * removes every binding, unless one is newer", (t) =>
      withStores(t, async (store) => {
        await register(store, ["h1", "h2"], 1);
        assert.deepEqual(
          await store.apply({
            aor: AOR,
            callId: "reg-1",
            cseq: 1,
            now: T0,
            changes: [],
            removeAll: true,
          }),
          { ok: false, reason: "out-of-order" },
        );
        const cleared = await store.apply({
          aor: AOR,
          callId: "reg-1",
          cseq: 2,
          now: T0,
          changes: [],
          removeAll: true,
        });
        assert.deepEqual(cleared, { ok: true, bindings: [] });
      }));

    test("expired bindings are not looked up, not counted, and purged", (t) =>
      withStores(t, async (store) => {
        await register(store, ["h1"], 1, 60);
        await register(store, ["h2"], 2, 3600);
        const later = T0 + 61_000;
        assert.deepEqual(
          (await store.lookup(AOR, later)).map((b) => b.key),
          ["h2"],
        );
        assert.equal(await store.count(later), 1);
        assert.equal(await store.purgeExpired(later), 1);
        assert.equal(await store.count(T0), 1);
      }));

    test("two stores (two proxies) writing the same AOR at once lose no binding", (t) =>
      withStores(t, async (a, b) => {
        const writes = [];
        for (let i = 0; i < 40; i++) {
          const store = i % 2 === 0 ? a : b;
          writes.push(
            store.apply({
              aor: AOR,
              callId: `call-${i}`,
              cseq: 1,
              now: T0,
              changes: [{ binding: binding(`k${i}`, { callId: `call-${i}` }), expires: 3600 }],
            }),
          );
        }
        const outcomes = await Promise.all(writes);
        assert.ok(outcomes.every((o) => o.ok));
        assert.equal((await a.lookup(AOR, T0)).length, 40);
        assert.equal((await b.lookup(AOR, T0)).length, 40);
        assert.equal(a.health(), "ok");
      }));

    test("a lookup sees what another store wrote a moment ago (no stale cache)", (t) =>
      withStores(t, async (a, b) => {
        assert.equal((await a.lookup(AOR, T0)).length, 0);
        await register(b, ["h1"], 1);
        assert.deepEqual(
          (await a.lookup(AOR, T0)).map((x) => x.key),
          ["h1"],
        );
        await register(b, ["h2"], 2);
        assert.equal((await a.lookup(AOR, T0)).length, 2);
        await register(b, ["h1", "h2"], 3, 0);
        assert.equal((await a.lookup(AOR, T0)).length, 0, "removed by the other store");
        await register(a, ["h3"], 4);
        assert.equal((await a.lookup(AOR, T0)).length, 1, "our own write");
        assert.equal((await b.lookup(AOR, T0)).length, 1);
        // Expiry applies to every lookup, cached or not.
        assert.equal((await a.lookup(AOR, T0 + 3_601_000)).length, 0);
        await b.purgeExpired(T0 + 3_601_000);
        assert.equal((await a.lookup(AOR, T0)).length, 0, "purged by the other store");
      }));
  });
}
