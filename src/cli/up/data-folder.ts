import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import { Credentials } from "../../sip/index.js";
import { SIPP_REGISTER_SCENARIO, usersCsv } from "./sipp-files.js";

/** DESIGN.md's demo users; `--users N` adds user0001 … */
export const DEMO_USERS: readonly string[] = ["alice", "bob", "carol"];

/** `$XDG_DATA_HOME/sipsteer`, else `~/.local/share/sipsteer` (the XDG base directory default). */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  const xdg = env.XDG_DATA_HOME;
  // The XDG spec: a relative path there is invalid and is to be ignored.
  if (xdg !== undefined && xdg.startsWith("/")) return join(xdg, "sipsteer");
  return join(home, ".local", "share", "sipsteer");
}

/** user0001 … with at least four digits, more when N needs them. */
export function numberedUsers(count: number): string[] {
  const width = Math.max(4, String(count).length);
  return Array.from({ length: count }, (_, i) => `user${String(i + 1).padStart(width, "0")}`);
}

/** What is generated once per data folder and kept there: never in the source. */
const secretsSchema = z.object({
  v: z.literal(1),
  adminToken: z.string().min(16),
  /** The HMAC key the proxies sign their pushed reports with. */
  reportKey: z.object({
    id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    secret: z.string().min(16),
  }),
  /** Key of the proxies' flow tokens: kept, so that a restart keeps dialogs routable. */
  flowTokenSecret: z.string().min(16),
  /** user → password; users beyond `--users` are kept for a later, larger run. */
  passwords: z.record(z.string(), z.string().min(8)),
});

export type UpSecrets = z.infer<typeof secretsSchema>;

export interface UpUser {
  readonly user: string;
  readonly password: string;
  readonly aor: string;
}

/** The files `sipsteer up` keeps in its data folder. */
export interface DataFiles {
  readonly dir: string;
  readonly secrets: string;
  readonly credentials: string;
  readonly usersCsv: string;
  readonly sippRegister: string;
  readonly store: string;
  readonly logs: string;
  readonly monitorConfig: string;
  /** The relay keeper's config (`sipsteer relays -c`). */
  readonly relaysConfig: string;
  proxyConfig(id: string): string;
  log(role: string): string;
}

export function dataFiles(dir: string): DataFiles {
  const abs = resolve(dir);
  return {
    dir: abs,
    secrets: join(abs, "secrets.json"),
    credentials: join(abs, "credentials"),
    usersCsv: join(abs, "users.csv"),
    sippRegister: join(abs, "sipp-register.xml"),
    store: join(abs, "location.sqlite"),
    logs: join(abs, "logs"),
    monitorConfig: join(abs, "monitor.yaml"),
    relaysConfig: join(abs, "relays.yaml"),
    proxyConfig: (id) => join(abs, `${id}.yaml`),
    log: (role) => join(abs, "logs", `${role}.log`),
  };
}

export interface PreparedData {
  readonly files: DataFiles;
  readonly secrets: UpSecrets;
  /** Demo users, then the numbered ones. */
  readonly users: readonly UpUser[];
}

/** URL-safe random text: `bytes` of entropy. */
function randomText(bytes: number): string {
  return randomBytes(bytes).toString("base64url");
}

/** Writes `text` to `file` through a temporary file (no half-written file after a crash). */
function writeAtomically(file: string, text: string, mode = 0o644): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode });
  renameSync(temporary, file);
  chmodSync(file, mode);
}

function readSecrets(file: string): UpSecrets | undefined {
  if (!existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new RangeError(
      `${file}: not JSON (${(e as Error).message}); move it away to start afresh`,
      {
        cause: e,
      },
    );
  }
  const result = secretsSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new RangeError(
      `${file}: ${issue.path.join(".") || "(top)"}: ${issue.message}; move it away to start afresh`,
    );
  }
  return result.data;
}

/**
 * Makes the data folder ready: the secrets (read, or generated the first time, and a password
 * for each user that has none yet), the credentials file (DESIGN.md "Credentials": HA1 values
 * only), the users' SIPp CSV and a SIPp REGISTER scenario, and the logs folder.
 */
export function prepareDataFolder(options: {
  readonly dir: string;
  readonly domain: string;
  readonly numberedUsers: number;
}): PreparedData {
  const files = dataFiles(options.dir);
  mkdirSync(files.dir, { recursive: true, mode: 0o700 });
  mkdirSync(files.logs, { recursive: true });
  const names = [...DEMO_USERS, ...numberedUsers(options.numberedUsers)];
  const known = readSecrets(files.secrets);
  const secrets: UpSecrets = known ?? {
    v: 1,
    adminToken: randomText(24),
    reportKey: { id: "up", secret: randomText(32) },
    flowTokenSecret: randomText(32),
    passwords: {},
  };
  const passwords = { ...secrets.passwords };
  let added = false;
  for (const name of names) {
    if (passwords[name] !== undefined) continue;
    passwords[name] = randomText(12);
    added = true;
  }
  const kept = { ...secrets, passwords };
  if (known === undefined || added)
    writeAtomically(files.secrets, `${JSON.stringify(kept, null, 2)}\n`, 0o600);

  const users = names.map((user) => ({
    user,
    password: passwords[user]!,
    aor: `sip:${user}@${options.domain}`,
  }));
  const credentials = [
    "# sipsteer up: user:realm:ha1-md5:ha1-sha256 (DESIGN.md); written at each start",
    ...users.map((u) => Credentials.line(u.user, options.domain, u.password)),
    "",
  ].join("\n");
  writeAtomically(files.credentials, credentials, 0o600);
  writeAtomically(files.usersCsv, usersCsv(users, options.domain), 0o600);
  writeAtomically(files.sippRegister, SIPP_REGISTER_SCENARIO);
  return { files, secrets: kept, users };
}
