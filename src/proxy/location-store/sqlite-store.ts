import Database from "better-sqlite3";
import type { Database as SqliteDatabase, Statement } from "better-sqlite3";
import {
  byPreference,
  type Binding,
  type LocationStore,
  type RegistrationOutcome,
  type RegistrationUpdate,
  type StoreHealth,
} from "./types.js";

interface Row {
  aor: string;
  contact_key: string;
  contact: string;
  params: string;
  call_id: string;
  cseq: number;
  expires_at: number;
  q: number | null;
  path: string;
  proxy: string;
  user_agent: string | null;
  updated_at: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS bindings (
  aor TEXT NOT NULL,
  contact_key TEXT NOT NULL,
  contact TEXT NOT NULL,
  params TEXT NOT NULL,
  call_id TEXT NOT NULL,
  cseq INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  q REAL,
  path TEXT NOT NULL,
  proxy TEXT NOT NULL,
  user_agent TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (aor, contact_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bindings_expiry ON bindings (expires_at);
`;

function toBinding(row: Row): Binding {
  return {
    aor: row.aor,
    key: row.contact_key,
    contact: row.contact,
    params: row.params,
    callId: row.call_id,
    cseq: row.cseq,
    expiresAt: row.expires_at,
    q: row.q ?? undefined,
    path: JSON.parse(row.path) as string[],
    proxy: row.proxy,
    userAgent: row.user_agent ?? undefined,
    updatedAt: row.updated_at,
  };
}

/** AORs whose bindings are kept in memory between changes of the file. */
const CACHE_MAX_AORS = 50_000;

/**
 * Bindings in SQLite (better-sqlite3): one file in WAL mode that the proxy processes of one
 * host share; each REGISTER is one IMMEDIATE transaction, so two proxies writing the same AOR
 * at once serialise instead of losing a binding.
 *
 * Lookups (one per call) are answered from memory while the file is unchanged: SQLite's
 * data_version moves whenever another connection commits, and our own writes clear the cache
 * too, so an answer is never older than the last commit anyone made.
 */
export class SqliteLocationStore implements LocationStore {
  readonly kind = "sqlite" as const;
  readonly #file: string;
  #db: SqliteDatabase | undefined;
  #health: StoreHealth = "down";
  #lookup!: Statement<[string, number], Row>;
  #get!: Statement<[string, string], Row>;
  #upsert!: Statement<Row>;
  #delete!: Statement<[string, string]>;
  #all!: Statement<[string], Row>;
  #count!: Statement<[number], { n: number }>;
  #purge!: Statement<[number]>;
  #dataVersion!: Statement<[], number>;
  #cacheVersion = -1;
  readonly #cache = new Map<string, Binding[]>();

  /** `file` is a path, or ":memory:" for a store private to this process. */
  constructor(file: string) {
    this.#file = file;
  }

  async start(): Promise<void> {
    const db = new Database(this.#file);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("busy_timeout = 5000");
    db.exec(SCHEMA);
    this.#lookup = db.prepare("SELECT * FROM bindings WHERE aor = ? AND expires_at > ?");
    this.#get = db.prepare("SELECT * FROM bindings WHERE aor = ? AND contact_key = ?");
    this.#upsert = db.prepare(
      `INSERT INTO bindings VALUES (@aor, @contact_key, @contact, @params, @call_id, @cseq,
        @expires_at, @q, @path, @proxy, @user_agent, @updated_at)
       ON CONFLICT (aor, contact_key) DO UPDATE SET contact = excluded.contact,
        params = excluded.params, call_id = excluded.call_id, cseq = excluded.cseq,
        expires_at = excluded.expires_at, q = excluded.q, path = excluded.path,
        proxy = excluded.proxy, user_agent = excluded.user_agent, updated_at = excluded.updated_at`,
    );
    this.#delete = db.prepare("DELETE FROM bindings WHERE aor = ? AND contact_key = ?");
    this.#all = db.prepare("SELECT * FROM bindings WHERE aor = ?");
    this.#count = db.prepare("SELECT count(*) AS n FROM bindings WHERE expires_at > ?");
    this.#purge = db.prepare("DELETE FROM bindings WHERE expires_at <= ?");
    this.#dataVersion = db.prepare<[], number>("PRAGMA data_version").pluck();
    this.#db = db;
    this.#health = "ok";
  }

  async stop(): Promise<void> {
    this.#db?.close();
    this.#db = undefined;
    this.#health = "down";
  }

  health(): StoreHealth {
    return this.#health;
  }

  async lookup(aor: string, now: number): Promise<Binding[]> {
    const version = this.#dataVersion.get()!;
    if (version !== this.#cacheVersion) {
      this.#cache.clear();
      this.#cacheVersion = version;
    }
    let bindings = this.#cache.get(aor);
    if (bindings === undefined) {
      // Every binding of the AOR, expired ones too: expiry is applied per lookup below.
      bindings = this.#all.all(aor).map(toBinding).sort(byPreference);
      if (this.#cache.size >= CACHE_MAX_AORS) this.#cache.clear();
      this.#cache.set(aor, bindings);
    }
    return bindings.filter((b) => b.expiresAt > now);
  }

  async apply(update: RegistrationUpdate): Promise<RegistrationOutcome> {
    const db = this.#db!;
    const run = db.transaction((): RegistrationOutcome => {
      const { aor, callId, cseq, now } = update;
      // RFC 3261 §10.3 step 6/7: a binding of the same Call-ID may only move forward.
      const stale = (row: Row) => row.call_id === callId && cseq <= row.cseq;
      if (update.removeAll === true) {
        const rows = this.#all.all(aor);
        if (rows.some(stale)) return { ok: false, reason: "out-of-order" };
        for (const row of rows) this.#delete.run(aor, row.contact_key);
      }
      for (const { binding, expires } of update.changes) {
        const row = this.#get.get(aor, binding.key);
        if (row !== undefined && stale(row)) return { ok: false, reason: "out-of-order" };
        if (expires === 0) {
          if (row !== undefined) this.#delete.run(aor, binding.key);
          continue;
        }
        this.#upsert.run({
          aor,
          contact_key: binding.key,
          contact: binding.contact,
          params: binding.params,
          call_id: binding.callId,
          cseq: binding.cseq,
          expires_at: now + expires * 1000,
          q: binding.q ?? null,
          path: JSON.stringify(binding.path),
          proxy: binding.proxy,
          user_agent: binding.userAgent ?? null,
          updated_at: now,
        });
      }
      return {
        ok: true,
        bindings: this.#lookup.all(aor, now).map(toBinding).sort(byPreference),
      };
    });
    // An IMMEDIATE transaction takes the write lock at once (no upgrade deadlock).
    const outcome = run.immediate();
    // Our own commits do not move our data_version.
    this.#cache.clear();
    return outcome;
  }

  async count(now: number): Promise<number> {
    return this.#count.get(now)!.n;
  }

  async purgeExpired(now: number): Promise<number> {
    this.#cache.clear();
    return this.#purge.run(now).changes;
  }
}
