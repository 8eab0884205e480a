import {
  SipRequest,
  SipResponseError,
  randomToken,
  type Protocol,
  type SipResponse,
  type TransactionLayer,
} from "../sip/index.js";
import { DiscoveryError } from "./errors.js";
import { candidateFromUri, type ProxyCandidate } from "./proxy-candidate.js";

/** Who asks: the REGISTER carries our address of record, as a real one would. */
export interface RedirectAsker {
  readonly transactions: TransactionLayer;
  readonly user: string;
  readonly domain: string;
}

/**
 * Asks the monitor's SIP redirect front (DESIGN.md "Client query"): a REGISTER for our AOR
 * sent to it is answered `302 Moved Temporarily` with the ranked proxies as Contacts, q-values
 * descending (RFC 3261 §8.1.3.4: "the client SHOULD … try … in order of q-value"; equal q
 * keep the order they came in). 503 (none eligible) is CLIENT_ERR_NO_PROXY with its
 * Retry-After; a timeout (408) and a transport failure (503 from our own stack) are
 * CLIENT_ERR_MONITOR_TIMEOUT and CLIENT_ERR_MONITOR_UNREACHABLE.
 */
export async function redirectOverSip(
  monitor: { readonly host: string; readonly port: number; readonly text: string },
  transport: Protocol,
  asker: RedirectAsker,
): Promise<ProxyCandidate[]> {
  const aor = `sip:${asker.user}@${asker.domain}`;
  const request = new SipRequest({
    method: "REGISTER",
    uri: `sip:${asker.domain}`,
    headers: [
      ["Max-Forwards", "70"],
      ["From", `<${aor}>;tag=${randomToken(8)}`],
      ["To", `<${aor}>`],
      ["Call-ID", `${randomToken(16)}@sipsteer-client`],
      ["CSeq", "1 REGISTER"],
      ["Content-Length", "0"],
    ],
  });
  const target = { protocol: transport, address: monitor.host, port: monitor.port };
  let response: SipResponse;
  try {
    response = await asker.transactions.sendRequest(request, target).final;
  } catch (e) {
    if (e instanceof SipResponseError && e.status === 408) {
      throw new DiscoveryError("CLIENT_ERR_MONITOR_TIMEOUT", `${monitor.text}: no answer (408)`, {
        monitor: monitor.text,
        cause: e,
      });
    }
    throw new DiscoveryError(
      "CLIENT_ERR_MONITOR_UNREACHABLE",
      `${monitor.text}: could not be sent to (${e instanceof Error ? e.message : String(e)})`,
      { monitor: monitor.text, cause: e },
    );
  }
  if (response.status === 503) {
    const retry = Number(response.getHeader("retry-after")?.split(/[\s;(]/)[0]);
    throw new DiscoveryError("CLIENT_ERR_NO_PROXY", `${monitor.text}: no eligible proxy (503)`, {
      monitor: monitor.text,
      ...(Number.isInteger(retry) && retry >= 0 ? { retryAfterS: retry } : {}),
    });
  }
  if (response.status !== 302) {
    throw new DiscoveryError(
      "CLIENT_ERR_REDIRECT_STATUS",
      `${monitor.text}: answered ${response.status} ${response.reason}, not 302`,
      { monitor: monitor.text },
    );
  }
  const ranked = response.contacts
    .map((contact, index) => ({ contact, index, q: contact.q ?? 1 }))
    .sort((a, b) => b.q - a.q || a.index - b.index);
  const candidates: ProxyCandidate[] = [];
  for (const { contact } of ranked) {
    const candidate = candidateFromUri(contact.uri.toString(), transport);
    if (candidate !== undefined) candidates.push(candidate);
  }
  if (candidates.length === 0) {
    throw new DiscoveryError(
      "CLIENT_ERR_BAD_ANSWER",
      `${monitor.text}: the 302 has no Contact with an IP address`,
      { monitor: monitor.text },
    );
  }
  return candidates;
}
