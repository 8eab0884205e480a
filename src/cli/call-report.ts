// What `sipsteer call` and `sipsteer answer` print when a call ends (issue 6): a table for
// people, or with --json one object whose keys scripts read (`proxy`, `answered`, `setup_ms`,
// `audio` and `video` with `sent`, `received`, `lost`, `jitter_ms`, and `mos`).

export interface StreamReport {
  /** RTP packets sent. */
  readonly sent: number;
  /** RTP packets received. */
  readonly received: number;
  /** Packets lost by RFC 3550 A.3 (expected minus received, never below 0). */
  readonly lost: number;
  /** RFC 3550 interarrival jitter, in milliseconds. */
  readonly jitter_ms: number;
}

export interface CallReport {
  /** The proxy the call went through (its id or SIP URI). */
  readonly proxy: string | null;
  readonly answered: boolean;
  /** From the INVITE sent to its 200 (answering: from the INVITE's arrival to our 200 going out). */
  readonly setup_ms: number | null;
  readonly audio: StreamReport | null;
  readonly video: StreamReport | null;
  /** ITU-T G.107 E-model estimate of the audio's listening quality, 1–4.5. */
  readonly mos: number | null;
}

const dash = (n: number | null | undefined, digits = 0): string =>
  n === null || n === undefined ? "-" : n.toFixed(digits);

/** The report as a small table (one line a stream), for a terminal. */
export function formatCallReport(report: CallReport): string {
  const rows: string[][] = [["stream", "sent", "received", "lost", "jitter ms"]];
  for (const [name, stream] of [
    ["audio", report.audio],
    ["video", report.video],
  ] as const) {
    if (stream === null) continue;
    rows.push([
      name,
      String(stream.sent),
      String(stream.received),
      String(stream.lost),
      dash(stream.jitter_ms, 1),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const table = rows.map((r) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "),
  );
  return [
    `proxy     ${report.proxy ?? "-"}`,
    `answered  ${report.answered ? "yes" : "no"}`,
    `setup     ${report.setup_ms === null ? "-" : `${dash(report.setup_ms)} ms`}`,
    `MOS       ${dash(report.mos, 2)}`,
    ...(rows.length > 1 ? ["", ...table] : []),
  ].join("\n");
}
