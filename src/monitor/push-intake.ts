import type { KeyObject } from "node:crypto";
import { signingSecret, verifySignature, type SigningKey } from "../contracts/index.js";
import type { Clock, Logger } from "../sip/index.js";
import { REFUSAL_WARN_EVERY_MS, type ProxyTable, type RefusalReason } from "./proxy-table.js";

/** How a push reached the monitor. */
export type PushChannel = "http" | "udp";

/** Why a push was refused before the table saw it. */
export type PushRefusalReason =
  /** No signature, or not in the `keyid=…, sig=…` / `<keyid> <hex>\n` form. */
  | "unsigned"
  /** A key id the monitor has no key for. */
  | "unknown-key"
  /** The HMAC does not match the body. */
  | "bad-signature"
  /** The body is not JSON. */
  | "bad-json"
  /** The body is over the size limit. */
  | "too-large";

export const PUSH_REFUSAL_REASONS: readonly PushRefusalReason[] = [
  "unsigned",
  "unknown-key",
  "bad-signature",
  "bad-json",
  "too-large",
];

export type PushOutcome =
  | { readonly ok: true; readonly proxy: string }
  | {
      readonly ok: false;
      readonly reason: PushRefusalReason | RefusalReason;
      readonly detail: string;
      /** The HTTP status that says it. */
      readonly status: number;
    };

/** The HTTP status for each refusal (all 4xx: the pusher is at fault). */
const STATUS: Readonly<Record<PushRefusalReason | RefusalReason, number>> = {
  unsigned: 401,
  "unknown-key": 401,
  "bad-signature": 401,
  "bad-json": 400,
  "too-large": 413,
  malformed: 400,
  "wrong-proxy": 400,
  "old-seq": 409,
  "old-boot": 409,
  "clock-window": 422,
  "unknown-proxy": 403,
  "table-full": 403,
};

// A flood of bad pushes gives one warning per REFUSAL_WARN_EVERY_MS, as the table's refusals do.
export { REFUSAL_WARN_EVERY_MS };

export interface PushIntakeOptions {
  readonly table: ProxyTable;
  readonly keys: readonly SigningKey[];
  readonly clock: Clock;
  readonly log: Logger;
  /** Called for each refusal of the intake's own kind (the table's are its `refused` events). */
  readonly onRefused?: (reason: PushRefusalReason, channel: PushChannel) => void;
}

/**
 * Signed pushes from both channels: checks the signature (HMAC-SHA256 over the exact body,
 * compared in constant time), parses the JSON and hands the report to the table as `push`.
 * Refusals are logged at debug and counted; a warning goes out at most every
 * {@link REFUSAL_WARN_EVERY_MS} so that a flood of bad packets cannot flood the log.
 */
export class PushIntake {
  readonly #table: ProxyTable;
  readonly #keys: ReadonlyMap<string, KeyObject>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #onRefused: PushIntakeOptions["onRefused"];
  /** The channel of each proxy's newest accepted push. */
  readonly #channels = new Map<string, PushChannel>();
  #suppressed = 0;
  #lastWarnAt = -Infinity;

  constructor(options: PushIntakeOptions) {
    this.#table = options.table;
    this.#keys = new Map(options.keys.map((k) => [k.id, signingSecret(k.secret)]));
    this.#clock = options.clock;
    this.#log = options.log.child({ component: "push-intake" });
    this.#onRefused = options.onRefused;
  }

  /** The channel that proxy's newest accepted push came over, if it pushed. */
  channelOf(proxy: string): PushChannel | undefined {
    return this.#channels.get(proxy);
  }

  /** Forgets a removed proxy's channel. */
  forget(proxy: string): void {
    this.#channels.delete(proxy);
  }

  /** A push whose signature is missing or unreadable. */
  refuseUnsigned(channel: PushChannel, detail: string): PushOutcome {
    return this.#refuse("unsigned", channel, detail);
  }

  /** A push over the size limit. */
  refuseTooLarge(channel: PushChannel, detail: string): PushOutcome {
    return this.#refuse("too-large", channel, detail);
  }

  /** Verifies `sig` by key `keyId` over `body`, then ingests the report. */
  take(body: Buffer, keyId: string, sig: string, channel: PushChannel): PushOutcome {
    const secret = this.#keys.get(keyId);
    if (secret === undefined) return this.#refuse("unknown-key", channel, `key ${keyId}`);
    if (!verifySignature(body, sig, secret)) {
      return this.#refuse("bad-signature", channel, `key ${keyId}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch (e) {
      return this.#refuse("bad-json", channel, e instanceof Error ? e.message : "not JSON");
    }
    const result = this.#table.ingest(parsed, { via: "push" });
    if (!result.ok) {
      // The table counts, logs and emits its own refusals.
      return {
        ok: false,
        reason: result.reason,
        detail: result.detail,
        status: STATUS[result.reason],
      };
    }
    this.#channels.set(result.proxy, channel);
    return { ok: true, proxy: result.proxy };
  }

  #refuse(reason: PushRefusalReason, channel: PushChannel, detail: string): PushOutcome {
    this.#onRefused?.(reason, channel);
    this.#log.debug({ reason, channel, detail }, "push refused");
    const now = this.#clock.now();
    if (now - this.#lastWarnAt >= REFUSAL_WARN_EVERY_MS) {
      this.#log.warn(
        { reason, channel, detail, suppressed: this.#suppressed },
        "push refused (further refusals for a while only counted)",
      );
      this.#lastWarnAt = now;
      this.#suppressed = 0;
    } else {
      this.#suppressed++;
    }
    return { ok: false, reason, detail, status: STATUS[reason] };
  }
}
