/** One SRV record's ordering fields (RFC 2782). */
export interface SrvRecord {
  readonly priority: number;
  readonly weight: number;
}

/**
 * RFC 2782's order of SRV records: by priority, lowest first; within a priority, a weighted
 * random order — "arrange all SRV RRs (that have not been ordered yet) in any order, except
 * that all those with weight 0 are placed at the beginning of the list. Compute the sum of
 * the weights …, choose a uniform random number between 0 and sum …, select the RR whose
 * running sum value is the first in the selected order which is greater than or equal to the
 * random number selected", and repeat with the rest. `random` is uniform in [0, 1).
 */
export function orderSrv<T extends SrvRecord>(
  records: readonly T[],
  random: () => number = Math.random,
): T[] {
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  const ordered: T[] = [];
  for (const priority of priorities) {
    const left = records
      .filter((r) => r.priority === priority)
      .sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1));
    while (left.length > 0) {
      const sum = left.reduce((total, r) => total + r.weight, 0);
      // With weights, the random number is in [0, sum]; "greater than or equal" lets a
      // zero-weight record be picked only when the draw is exactly 0 (its "small chance").
      const draw = sum === 0 ? 0 : Math.min(sum, Math.floor(random() * (sum + 1)));
      let running = 0;
      let index = left.length - 1;
      for (let i = 0; i < left.length; i++) {
        running += left[i]!.weight;
        if (running >= draw) {
          index = i;
          break;
        }
      }
      ordered.push(left.splice(index, 1)[0]!);
    }
  }
  return ordered;
}
