import { z } from "zod";

/** RFC 3261 §17.1.1.1: round-trip time estimate. */
export const DEFAULT_T1_MS = 500;
/** RFC 3261 §17.1.2.2: the longest retransmit interval for non-INVITE requests and responses. */
export const DEFAULT_T2_MS = 4_000;
/** RFC 3261 §17.1.2.2: the longest time a message stays in the network. */
export const DEFAULT_T4_MS = 5_000;
/** RFC 3261 §17.1.1.2: Timer D, at least 32 s over unreliable transports. */
export const TIMER_D_MS = 32_000;
/** RFC 3261 §17.2.1: send 100 Trying unless the TU answers within this long. */
export const DEFAULT_TRYING_DELAY_MS = 200;

export const transactionOptionsSchema = z.object({
  t1Ms: z.number().int().positive().default(DEFAULT_T1_MS),
  t2Ms: z.number().int().positive().default(DEFAULT_T2_MS),
  t4Ms: z.number().int().positive().default(DEFAULT_T4_MS),
  /** Delay before an INVITE server transaction sends 100 Trying itself; 0 sends at once. */
  tryingDelayMs: z.number().int().min(0).default(DEFAULT_TRYING_DELAY_MS),
});

export type TransactionOptions = z.infer<typeof transactionOptionsSchema>;
export type TransactionOptionsInput = z.input<typeof transactionOptionsSchema>;

/** Validates, applies defaults and freezes; a bad option throws naming its path. */
export function parseTransactionOptions(
  input: TransactionOptionsInput = {},
): Readonly<TransactionOptions> {
  const result = transactionOptionsSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new RangeError(`transactions.${issue.path.join(".")}: ${issue.message}`);
  }
  if (result.data.t2Ms < result.data.t1Ms) {
    throw new RangeError("transactions.t2Ms: must not be below t1Ms");
  }
  return Object.freeze(result.data);
}
