import { z } from "zod";

/** DESIGN.md's selection policies. */
export const POLICY_NAMES = ["least-loaded", "literal", "p2c", "weighted-random"] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

/** Workload a sent client adds when the proxy gives no calls capacity (as if it held 100). */
export const DEFAULT_CLIENT_INCREMENT = 0.01;
/**
 * Sends up to this long before a report was made are still counted against it: the client
 * needs a round trip or two to reach its proxy and show in its counts.
 */
export const DEFAULT_SEND_ALLOWANCE_MS = 100;

export const policyConfigSchema = z.object({
  policy: z.enum(POLICY_NAMES).default("least-loaded"),
  /** Workload one sent client adds to a proxy whose report has no calls capacity. */
  clientIncrement: z.number().positive().max(1).default(DEFAULT_CLIENT_INCREMENT),
  /** Sends made less than this before a report's `at` are not yet taken as reflected by it. */
  sendAllowanceMs: z.number().int().nonnegative().default(DEFAULT_SEND_ALLOWANCE_MS),
});

export type PolicyConfig = z.infer<typeof policyConfigSchema>;

/** One eligible proxy as a policy sees it. */
export interface Candidate {
  readonly id: string;
  /** The workload of its newest report. */
  readonly reported: number;
  /** Estimated workload of the clients sent to it that its newest report cannot reflect. */
  readonly pending: number;
  /** How many clients it holds at full load: capacity.calls, or 1/clientIncrement. */
  readonly size: number;
}

/** How one policy picks among the eligible proxies. */
export interface Policy {
  readonly name: PolicyName;
  /** The workload it ranks by: corrected for sends, or (literal) as reported. */
  effective(candidate: Candidate): number;
  /** Index of the chosen candidate; `candidates` is not empty. */
  choose(candidates: readonly Candidate[], random: () => number): number;
}

const corrected = (c: Candidate): number => c.reported + c.pending;
const reported = (c: Candidate): number => c.reported;

/** a before b: lower workload, then more room (so idle proxies fill the largest first). */
function better(a: Candidate, b: Candidate, effective: (c: Candidate) => number): boolean {
  const ea = effective(a);
  const eb = effective(b);
  return ea < eb || (ea === eb && a.size > b.size);
}

function lowest(candidates: readonly Candidate[], effective: (c: Candidate) => number): number {
  let best = 0;
  for (let i = 1; i < candidates.length; i++) {
    if (better(candidates[i]!, candidates[best]!, effective)) best = i;
  }
  return best;
}

/** Clients a proxy could still take, by its size: the weights of weighted-random and DNS SRV. */
export function spareWeights(
  candidates: readonly Candidate[],
  effective: (c: Candidate) => number = corrected,
): number[] {
  return candidates.map((c) => c.size * Math.max(0, 1 - effective(c)));
}

/** least-loaded (default): the lowest workload corrected for the clients already sent. */
const leastLoaded: Policy = {
  name: "least-loaded",
  effective: corrected,
  choose: (candidates) => lowest(candidates, corrected),
};

/** literal: the lowest reported workload, sends ignored (herds a burst onto one proxy). */
const literal: Policy = {
  name: "literal",
  effective: reported,
  choose: (candidates) => lowest(candidates, reported),
};

/** p2c: two distinct proxies at random, the less loaded (corrected) of the two. */
const powerOfTwoChoices: Policy = {
  name: "p2c",
  effective: corrected,
  choose(candidates, random) {
    const n = candidates.length;
    if (n === 1) return 0;
    const i = Math.min(n - 1, Math.floor(random() * n));
    let j = Math.min(n - 2, Math.floor(random() * (n - 1)));
    if (j >= i) j++;
    return better(candidates[j]!, candidates[i]!, corrected) ? j : i;
  },
};

/**
 * weighted-random: at random, weighted by spare capacity (corrected). When every proxy is at
 * or over capacity, weighted by size, so an overloaded fleet still shares by capacity.
 */
const weightedRandom: Policy = {
  name: "weighted-random",
  effective: corrected,
  choose(candidates, random) {
    let weights = spareWeights(candidates, corrected);
    let total = weights.reduce((a, b) => a + b, 0);
    if (total <= 0) {
      weights = candidates.map((c) => c.size);
      total = weights.reduce((a, b) => a + b, 0);
    }
    let r = random() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i]!;
      if (r < 0) return i;
    }
    return weights.length - 1;
  },
};

const POLICIES: Readonly<Record<PolicyName, Policy>> = {
  "least-loaded": leastLoaded,
  literal,
  p2c: powerOfTwoChoices,
  "weighted-random": weightedRandom,
};

export function policyFor(name: PolicyName): Policy {
  return POLICIES[name];
}

/**
 * The workload one more client adds to a proxy: 1/capacity.calls when its calls capacity is
 * known, else `fallback` (the configured clientIncrement).
 */
export function clientIncrement(capacityCalls: number, fallback: number): number {
  return capacityCalls > 0 ? 1 / capacityCalls : fallback;
}

/** Sends to one proxy, oldest first, with the running sum of their increments. */
class ProxySends {
  at: number[] = [];
  increment: number[] = [];
  head = 0;
  sum = 0;
}

/**
 * The clients sent to each proxy that its newest report cannot yet reflect. Each send is
 * recorded with its time and workload increment; sends older than a report (less an
 * allowance) are forgotten when that report is asked about, so a burst of selects between two
 * reports is spread by spare capacity, and sends after a report are not forgotten at it.
 */
export class SendLedger {
  readonly #byProxy = new Map<string, ProxySends>();

  /** A client was sent to `proxy` at `at` (monotonic ms), adding `increment` of workload. */
  record(proxy: string, at: number, increment: number): void {
    let sends = this.#byProxy.get(proxy);
    if (sends === undefined) {
      sends = new ProxySends();
      this.#byProxy.set(proxy, sends);
    }
    sends.at.push(at);
    sends.increment.push(increment);
    sends.sum += increment;
  }

  /** The workload of the sends at or after `since`; older ones are forgotten. */
  pending(proxy: string, since: number): number {
    const sends = this.#byProxy.get(proxy);
    if (sends === undefined) return 0;
    const { at, increment } = sends;
    while (sends.head < at.length && at[sends.head]! < since) {
      sends.sum -= increment[sends.head]!;
      sends.head++;
    }
    if (sends.head === at.length) {
      this.#byProxy.delete(proxy);
      return 0;
    }
    // Drop the forgotten head now and then rather than shifting on every send.
    if (sends.head > 1024 && sends.head * 2 > at.length) {
      at.splice(0, sends.head);
      increment.splice(0, sends.head);
      sends.head = 0;
    }
    // Subtraction leaves rounding dust; a pending load is never negative.
    return Math.max(0, sends.sum);
  }

  /** Sends remembered for `proxy` (including ones not yet pruned). */
  count(proxy: string): number {
    const sends = this.#byProxy.get(proxy);
    return sends === undefined ? 0 : sends.at.length - sends.head;
  }

  forget(proxy: string): void {
    this.#byProxy.delete(proxy);
  }

  clear(): void {
    this.#byProxy.clear();
  }
}
