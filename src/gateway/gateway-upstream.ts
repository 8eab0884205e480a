import { createResponse, type Logger, type SipRequest, type SipResponse } from "../sip/index.js";
import type { Upstream, UpstreamHop, UpstreamKind } from "../proxy/proxy-core/upstream.js";
import type { AccessControl } from "./access-control.js";
import type { ProxyChooser } from "./proxy-chooser.js";
import type { ForwardStats } from "./gateway-status.js";

/**
 * The gateway's side of the proxy core's Upstream: proxies from the ProxyChooser (the
 * monitor's ranking, pins, hold-offs), call limits from AccessControl, and the counters of
 * `/status`.
 */
export class GatewayUpstream implements Upstream {
  readonly #chooser: ProxyChooser;
  readonly #access: AccessControl;
  readonly #log: Logger;
  readonly #forwarded = { registers: 0, dialogs: 0, other: 0, retries: 0, noProxy: 0 };
  readonly #callsByProxy = new Map<string, number>();

  constructor(
    chooser: ProxyChooser,
    access: AccessControl,
    readonly attemptTimeoutMs: number,
    log: Logger,
  ) {
    this.#chooser = chooser;
    this.#access = access;
    this.#log = log;
  }

  get forwarded(): ForwardStats {
    return { ...this.#forwarded, callsByProxy: Object.fromEntries(this.#callsByProxy) };
  }

  async candidates(kind: UpstreamKind, key: string, method: string): Promise<UpstreamHop[]> {
    if (kind === "register") this.#forwarded.registers++;
    else if (method === "INVITE") this.#forwarded.dialogs++;
    else this.#forwarded.other++;
    return this.#chooser.candidatesFor(kind, key);
  }

  answered(hop: UpstreamHop, kind: UpstreamKind, key: string, response: SipResponse): void {
    if (response.status >= 300) return;
    if (kind === "dialog") {
      if (response.cseq.method === "INVITE")
        this.#callsByProxy.set(hop.id, (this.#callsByProxy.get(hop.id) ?? 0) + 1);
      return;
    }
    // A REGISTER's 2xx lists the AOR's bindings now: none left means it de-registered.
    if (response.contacts.length > 0) this.#chooser.pin(key, hop.id);
    else this.#chooser.unpin(key);
  }

  failed(hop: UpstreamHop, status: number): void {
    this.#forwarded.retries++;
    const why = status === 408 ? "no answer" : "503";
    this.#log.warn({ proxy: hop.id, why }, "proxy failed; trying the next");
    this.#chooser.failed(hop.id, why);
  }

  exhausted(): void {
    this.#forwarded.noProxy++;
  }

  admitCall(request: SipRequest, user: string): SipResponse | undefined {
    const verdict = this.#access.checkCall(request, user);
    // checkCall answers or admits; it never drops.
    if (verdict.admit || verdict.action === "drop") return undefined;
    return createResponse(request, verdict.status, {
      toTag: `gw${Math.random().toString(36).slice(2, 10)}`,
      reason: verdict.reasonPhrase,
    });
  }

  callStarted(user: string, callId: string): void {
    this.#access.callStarted(user, callId);
  }
}
