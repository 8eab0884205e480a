import { Redis, type RedisOptions } from "ioredis";
import {
  byPreference,
  type Binding,
  type LocationStore,
  type RegistrationOutcome,
  type RegistrationUpdate,
  type StoreHealth,
} from "./types.js";

/**
 * One REGISTER, atomically (a Lua script runs alone on the server): first every Call-ID/CSeq
 * check of RFC 3261 §10.3, then the changes, so that a refused update changes nothing.
 * KEYS: the AOR's hash, the expiry index. ARGV[1]: the update as JSON.
 */
const APPLY = `
local u = cjson.decode(ARGV[1])
local function stale(json)
  local b = cjson.decode(json)
  return b.callId == u.callId and u.cseq <= b.cseq
end
local all = redis.call('HGETALL', KEYS[1])
if u.removeAll then
  for i = 2, #all, 2 do
    if stale(all[i]) then return '{"ok":false}' end
  end
end
for _, c in ipairs(u.changes) do
  local cur = redis.call('HGET', KEYS[1], c.key)
  if cur and stale(cur) then return '{"ok":false}' end
end
if u.removeAll then
  for i = 1, #all, 2 do redis.call('ZREM', KEYS[2], u.aor .. '\\n' .. all[i]) end
  redis.call('DEL', KEYS[1])
end
for _, c in ipairs(u.changes) do
  if c.expires == 0 then
    redis.call('HDEL', KEYS[1], c.key)
    redis.call('ZREM', KEYS[2], u.aor .. '\\n' .. c.key)
  else
    redis.call('HSET', KEYS[1], c.key, c.json)
    redis.call('ZADD', KEYS[2], c.expiresAt, u.aor .. '\\n' .. c.key)
  end
end
local now = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 2, #now, 2 do
  local b = cjson.decode(now[i])
  if b.expiresAt > u.now then table.insert(out, now[i]) end
end
return '{"ok":true,"bindings":[' .. table.concat(out, ',') .. ']}'
`;

/** Removes what expired by `ARGV[1]`. KEYS: the expiry index. ARGV[2]: the key prefix. */
const PURGE = `
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, member in ipairs(gone) do
  local nl = string.find(member, '\\n', 1, true)
  redis.call('HDEL', ARGV[2] .. 'aor:' .. string.sub(member, 1, nl - 1), string.sub(member, nl + 1))
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return #gone
`;

interface ScriptedRedis extends Redis {
  sipsteerApply(aorKey: string, expiryKey: string, update: string): Promise<string>;
  sipsteerPurge(expiryKey: string, now: number, prefix: string): Promise<number>;
}

export interface RedisStoreOptions {
  /** redis://host:port/db, or ioredis options (Sentinel and the rest). */
  readonly url?: string;
  readonly redis?: RedisOptions;
  /** Prefix of every key, so that fleets can share a server. */
  readonly prefix?: string;
}

/**
 * Bindings in Redis (ioredis), for proxies on several hosts: an AOR is a hash of its contacts
 * (JSON), with a sorted set of expiry times for counting and purging. Updates run as Lua
 * scripts, so two proxies writing one AOR at once cannot lose a binding.
 */
export class RedisLocationStore implements LocationStore {
  readonly kind = "redis" as const;
  readonly #options: RedisStoreOptions;
  readonly #prefix: string;
  #redis: ScriptedRedis | undefined;

  constructor(options: RedisStoreOptions) {
    this.#options = options;
    this.#prefix = options.prefix ?? "sipsteer:";
  }

  async start(): Promise<void> {
    const base: RedisOptions = {
      lazyConnect: true,
      maxRetriesPerRequest: 2,
      ...this.#options.redis,
    };
    const redis = (
      this.#options.url === undefined ? new Redis(base) : new Redis(this.#options.url, base)
    ) as ScriptedRedis;
    redis.defineCommand("sipsteerApply", { numberOfKeys: 2, lua: APPLY });
    redis.defineCommand("sipsteerPurge", { numberOfKeys: 1, lua: PURGE });
    // Connection trouble is reported through health(); ioredis reconnects by itself.
    redis.on("error", () => undefined);
    await redis.connect();
    this.#redis = redis;
  }

  async stop(): Promise<void> {
    const redis = this.#redis;
    this.#redis = undefined;
    if (redis === undefined) return;
    try {
      await redis.quit();
    } catch {
      redis.disconnect();
    }
  }

  health(): StoreHealth {
    const status = this.#redis?.status;
    return status === "ready"
      ? "ok"
      : status === "reconnecting" || status === "connecting"
        ? "degraded"
        : "down";
  }

  #aorKey(aor: string): string {
    return `${this.#prefix}aor:${aor}`;
  }

  get #expiryKey(): string {
    return `${this.#prefix}expiry`;
  }

  async lookup(aor: string, now: number): Promise<Binding[]> {
    const all = await this.#redis!.hvals(this.#aorKey(aor));
    return all
      .map((json) => JSON.parse(json) as Binding)
      .filter((b) => b.expiresAt > now)
      .sort(byPreference);
  }

  async apply(update: RegistrationUpdate): Promise<RegistrationOutcome> {
    const { aor, now } = update;
    const payload = {
      aor,
      callId: update.callId,
      cseq: update.cseq,
      now,
      removeAll: update.removeAll === true,
      changes: update.changes.map(({ binding, expires }) => {
        const stored: Binding = { ...binding, expiresAt: now + expires * 1000, updatedAt: now };
        return {
          key: binding.key,
          expires,
          expiresAt: stored.expiresAt,
          json: JSON.stringify(stored),
        };
      }),
    };
    const result = JSON.parse(
      await this.#redis!.sipsteerApply(this.#aorKey(aor), this.#expiryKey, JSON.stringify(payload)),
    ) as { ok: boolean; bindings?: Binding[] };
    if (!result.ok) return { ok: false, reason: "out-of-order" };
    return { ok: true, bindings: (result.bindings ?? []).sort(byPreference) };
  }

  async count(now: number): Promise<number> {
    return this.#redis!.zcount(this.#expiryKey, `(${now}`, "+inf");
  }

  async purgeExpired(now: number): Promise<number> {
    return this.#redis!.sipsteerPurge(this.#expiryKey, now, this.#prefix);
  }
}
