import type { SipRequest } from "../sip/index.js";

/**
 * User-Agent substrings of SIP scanners and password crackers (matched case-insensitively).
 * Checked against what the tools send: Debian's sipvicious 0.3.3 (`svmap`, `svwar`, `svcrack`)
 * writes `User-Agent: friendly-scanner`, sipsak 0.9.8.1 `User-Agent: sipsak 0.9.8.1`; the
 * others are the strings these tools are known by in the wild (sipcli/v1.8,
 * VaxSIPUserAgent/3.1, …). sipsak is also a diagnostic tool: an operator who probes through
 * the gateway with it takes it out of the list.
 */
export const DEFAULT_SCANNER_AGENTS: readonly string[] = Object.freeze([
  "friendly-scanner",
  "sipvicious",
  "sipcli",
  "sipsak",
  "VaxSIPUserAgent",
  "pplsip",
  "sundayddr",
  "iWar",
  "SIVuS",
  "Gulp",
  "sip-scan",
  "smap",
]);

/** Tells requests whose User-Agent contains one of the given substrings (any case). */
export class ScannerAgents {
  readonly #needles: readonly string[];

  constructor(agents: readonly string[]) {
    this.#needles = agents.map((a) => a.toLowerCase());
  }

  /** The substring found in the request's User-Agent, or undefined. */
  match(request: SipRequest): string | undefined {
    if (this.#needles.length === 0) return undefined;
    const fields = request.getHeaders("User-Agent");
    if (fields.length === 0) return undefined;
    const agent = (fields.length === 1 ? fields[0]! : fields.join(" ")).toLowerCase();
    for (const needle of this.#needles) if (agent.includes(needle)) return needle;
    return undefined;
  }
}
