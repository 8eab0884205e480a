/**
 * Which process of a multi-process proxy owns a message: the one whose transactions it
 * belongs to. Requests go by their Call-ID (so a retransmission, its CANCEL and the ACK of a
 * non-2xx meet their INVITE, and every request of a dialog is counted in one place);
 * responses go by the tag in our branch of their top Via ("z9hG4bK-<loop>-w<k>.<random>").
 */

/** The process that owns the requests of a Call-ID. */
export function ownerOfCallId(callId: string, processes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < callId.length; i++) {
    h ^= callId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % processes;
}

/** The branch tag of process `index` (ProxyCore writes it into every branch it makes). */
export function branchTagOf(index: number): string {
  return `w${index}.`;
}

/** The process a response belongs to, from our branch in its top Via; undefined if not ours. */
export function ownerOfBranch(branch: string | undefined): number | undefined {
  if (branch === undefined || !branch.startsWith("z9hG4bK-")) return undefined;
  const dash = branch.indexOf("-", 8);
  if (dash < 0 || branch.charCodeAt(dash + 1) !== 0x77 /* w */) return undefined;
  let n = 0;
  let i = dash + 2;
  for (; i < branch.length; i++) {
    const c = branch.charCodeAt(i);
    if (c === 0x2e /* . */) break;
    if (c < 0x30 || c > 0x39 || i - dash > 5) return undefined;
    n = n * 10 + (c - 0x30);
  }
  return i > dash + 2 && i < branch.length ? n : undefined;
}
