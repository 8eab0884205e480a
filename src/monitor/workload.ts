import { z } from "zod";
import type { LoadReport } from "../contracts/index.js";

/** What a workload term can read from a load report. */
export const WORKLOAD_METRICS = [
  "calls",
  "media",
  "elu",
  "cpu",
  "registrations",
  "transactions",
  "cps",
] as const;

export type WorkloadMetric = (typeof WORKLOAD_METRICS)[number];

/** The metrics that a report gives a capacity for. */
const HAS_CAPACITY: ReadonlySet<WorkloadMetric> = new Set(["calls", "media"]);

const termSchema = z
  .object({
    metric: z.enum(WORKLOAD_METRICS),
    /**
     * What the metric is divided by: `"capacity"` (the report's capacity of that kind; the
     * term is left out while that capacity is 0 — only calls and media have one), a fixed
     * number (e.g. the proxy's cores, for `cpu`), or absent (the metric as it is: `elu`).
     */
    per: z.union([z.literal("capacity"), z.number().positive()]).optional(),
    /** Multiplies the term; with `combine: "sum"` these are the weights of a weighted sum. */
    weight: z.number().positive().default(1),
  })
  .superRefine((term, ctx) => {
    if (term.per === "capacity" && !HAS_CAPACITY.has(term.metric)) {
      ctx.addIssue({
        code: "custom",
        path: ["per"],
        message: `a report has no capacity for ${term.metric}; give a number or leave it out`,
      });
    }
  });

export type WorkloadTerm = z.infer<typeof termSchema>;

/** DESIGN.md's default: max(calls/capacity.calls, media/capacity.media, elu). */
export const DEFAULT_WORKLOAD_TERMS: readonly WorkloadTerm[] = Object.freeze([
  { metric: "calls", per: "capacity", weight: 1 },
  { metric: "media", per: "capacity", weight: 1 },
  { metric: "elu", weight: 1 },
]);

export const workloadConfigSchema = z.object({
  /** How the terms make one number: the largest of them (default) or their sum. */
  combine: z.enum(["max", "sum"]).default("max"),
  terms: z
    .array(termSchema)
    .min(1)
    .default(() => DEFAULT_WORKLOAD_TERMS.map((t) => ({ ...t }))),
});

export type WorkloadConfig = z.infer<typeof workloadConfigSchema>;
export type WorkloadConfigInput = z.input<typeof workloadConfigSchema>;

/** The fields of a load report that a workload formula may read. */
export type WorkloadInputs = Pick<LoadReport, WorkloadMetric | "capacity">;

/** 0 = idle, 1 = at capacity; above 1 when a proxy is over its capacity. */
export type WorkloadFunction = (report: WorkloadInputs) => number;

/**
 * Validates, applies defaults and freezes; a bad field throws a RangeError naming its path,
 * prefixed with `field` (where the workload sits in the caller's config).
 */
export function parseWorkloadConfig(input: unknown, field = "workload"): Readonly<WorkloadConfig> {
  const result = workloadConfigSchema.safeParse(input ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = [field, ...issue.path.map(String)].join(".");
    throw new RangeError(`${path}: ${issue.message}`);
  }
  const config = result.data;
  for (const term of config.terms) Object.freeze(term);
  Object.freeze(config.terms);
  return Object.freeze(config);
}

/** A term's value, or undefined when it is left out (its capacity is 0). */
type TermValue = (report: WorkloadInputs) => number | undefined;

function termValue(term: WorkloadTerm): TermValue {
  const { metric, per, weight } = term;
  if (per === "capacity") {
    // Only calls and media get here (the schema refuses the others).
    const kind = metric as "calls" | "media";
    return (r) => {
      const capacity = r.capacity[kind];
      return capacity > 0 ? (weight * r[kind]) / capacity : undefined;
    };
  }
  const divisor = per ?? 1;
  return (r) => (weight * r[metric]) / divisor;
}

/**
 * Turns a validated config into the function the monitor runs on every report (built once,
 * so the per-report cost is a few divisions). With no term present it gives 0.
 */
export function compileWorkload(config: WorkloadConfig): WorkloadFunction {
  const terms = config.terms.map(termValue);
  if (config.combine === "sum") {
    return (r) => {
      let sum = 0;
      for (const term of terms) sum += term(r) ?? 0;
      return sum;
    };
  }
  return (r) => {
    let max = 0;
    for (const term of terms) {
      const v = term(r);
      if (v !== undefined && v > max) max = v;
    }
    return max;
  };
}

/**
 * DESIGN.md's default workload: max(calls/capacity.calls, media/capacity.media, elu), a term
 * left out when its capacity is 0.
 */
export const defaultWorkload: WorkloadFunction = compileWorkload(parseWorkloadConfig({}));
