import { createSocket, type Socket as DgramSocket } from "node:dgram";
import { lookup as dnsLookup } from "node:dns";
import { EventEmitter } from "node:events";
import { readFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import {
  connect as netConnect,
  createServer as createNetServer,
  isIP,
  type Server as NetServer,
  type Socket as NetSocket,
} from "node:net";
import {
  connect as tlsConnect,
  createServer as createTlsServer,
  type Server as TlsServer,
} from "node:tls";
import { WebSocket, WebSocketServer } from "ws";
import { systemClock, type Clock, type ClockTimer } from "../clock.js";
import { SipParseError } from "../errors.js";
import { silentLogger, type Logger } from "../logger.js";
import {
  StreamFramer,
  buildParseErrorResponse,
  formatVia,
  parseDatagram,
  parseWebSocketMessage,
  type ParseLimits,
  type SipMessage,
  type SipResponse,
  type Via,
} from "../message/index.js";
import { DestinationPolicy } from "./destination-policy.js";
import {
  StreamFlow,
  UdpFlow,
  WsFlow,
  parseUdpFlowId,
  plainAddress,
  type Flow,
  type UdpFlowInfo,
} from "./flows.js";
import {
  parseTransportOptions,
  type ListenerOptions,
  type TransportOptions,
  type TransportOptionsInput,
} from "./transport-options.js";
import {
  TransportError,
  defaultPort,
  viaTransport,
  type Endpoint,
  type FlowInfo,
  type InboundMessage,
  type Protocol,
  type SendTarget,
} from "./types.js";

/** A listener as bound: the actual port when 0 was asked for. */
export interface BoundListener {
  readonly protocol: Protocol;
  readonly address: string;
  readonly port: number;
  /** Host for Via sent-by and Contact. */
  readonly advertise: string;
}

/** Counters of what crossed the transport layer. */
export interface TransportStats {
  received: number;
  sent: number;
  parseErrors: number;
  refusedDestinations: number;
  /** Connections closed because a message was not whole within messageTimeoutMs. */
  slowMessages: number;
  sendErrors: number;
  connectionsAccepted: number;
  connectionsRefused: number;
}

export interface TransportEvents {
  /** A request or response arrived (requests carry `received`/`rport` already). */
  message: [InboundMessage];
  /** A connection closed (TCP, TLS, WebSocket); RFC 5626 flows end here. */
  flowClosed: [FlowInfo];
  /** A single CRLF arrived on a connection (RFC 5626 pong). */
  pong: [FlowInfo];
}

export interface TransportDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Set when this transport is one of several processes sharing the listeners. */
  readonly shared?: SharedTransportHooks;
  /**
   * Sees the bytes of each datagram and WebSocket message before they are parsed: false
   * drops them unparsed, unanswered and uncounted. For a receiver that ignores some messages
   * whole, cheaply told by their first bytes (a stateless redirect server and its ACKs).
   */
  readonly screen?: (bytes: Buffer) => boolean;
}

/**
 * How one process of several (a proxy run on every core) shares the listeners: UDP sockets
 * are shared by all, stream listeners (TCP, TLS, WS, WSS) live in one process only.
 */
export interface SharedTransportHooks {
  /** False: do not bind stream listeners; their connections are another process's. */
  readonly ownsStreams: boolean;
  /**
   * Sees every message that parsed, before anything else: true when it was handed to the
   * process that owns it (its transaction lives there), which is then told via `inject`.
   */
  steer(bytes: Buffer, message: SipMessage, flow: FlowInfo): boolean;
  /** Sends bytes over a stream flow (by id) or to a stream peer that another process owns. */
  sendElsewhere(target: SendTarget, bytes: Buffer): void;
  /**
   * For each UDP listener (in order), a port of this process alone on the same address
   * (0: any): our Via sent-by names it, so responses come straight back to this process.
   */
  readonly ownUdpPorts?: readonly number[];
}

export interface SendOptions {
  /**
   * Push our own Via with this branch before sending (RFC 3261 §18.1.1: the transport
   * writes sent-by, the address of the listener that sends).
   */
  readonly viaBranch?: string;
}

/** What a send put on the wire, for retransmission by the transaction layer. */
export interface SentMessage {
  readonly flow: FlowInfo;
  readonly bytes: Buffer;
}

const CRLF = Buffer.from("\r\n", "latin1");
const NEVER_A_DESTINATION = new DestinationPolicy([
  "0.0.0.0/8",
  "224.0.0.0/4",
  "255.255.255.255/32",
  "ff00::/8",
]);
/** The largest UDP payload over IPv4 (65,535 minus IP and UDP headers). */
const MAX_DATAGRAM = 65_507;

interface UdpListener {
  kind: "udp";
  spec: BoundListener;
  socket: DgramSocket;
}
interface StreamListener {
  kind: "stream";
  spec: BoundListener;
  server: NetServer | TlsServer;
  options: ListenerOptions;
}
interface WsListener {
  kind: "ws";
  spec: BoundListener;
  http: HttpServer;
  wss: WebSocketServer;
  options: ListenerOptions;
}
/** A stream listener that another process binds (SharedTransportHooks.ownsStreams false). */
interface RemoteListener {
  kind: "remote";
  spec: BoundListener;
}
type Listener = UdpListener | StreamListener | WsListener | RemoteListener;

/**
 * The SIP transport layer (RFC 3261 §18, RFC 3581, RFC 5626 keep-alives, RFC 7118): UDP,
 * TCP, TLS, WS and WSS listeners behind one interface. It frames and parses what arrives,
 * answers what does not parse (400, or drops it), stamps `received` and `rport` into requests,
 * routes responses back per §18.2.2, reuses connections, closes idle ones, caps connections
 * per source, and checks every destination against `allowedDestinations`.
 */
export class TransportLayer extends EventEmitter<TransportEvents> {
  readonly options: Readonly<TransportOptions>;
  readonly stats: TransportStats = {
    received: 0,
    sent: 0,
    parseErrors: 0,
    refusedDestinations: 0,
    slowMessages: 0,
    sendErrors: 0,
    connectionsAccepted: 0,
    connectionsRefused: 0,
  };
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #policy: DestinationPolicy;
  readonly #shared: SharedTransportHooks | undefined;
  readonly #screen: ((bytes: Buffer) => boolean) | undefined;
  readonly #limits: ParseLimits;
  #listeners: Listener[] = [];
  /** Listeners as configured; own UDP sockets of a shared transport follow them. */
  #configured = 0;
  /** Configured UDP listener → this process's own port on its address (shared transports). */
  readonly #viaPort = new Map<BoundListener, number>();
  readonly #ownSocket = new Map<Listener, UdpListener>();
  /** Connection flows by id. */
  readonly #flows = new Map<string, Flow>();
  /** Connection flows by peer, for reuse: "protocol|address|port". */
  readonly #byPeer = new Map<string, string>();
  readonly #connecting = new Map<string, Promise<Flow>>();
  readonly #perSource = new Map<string, number>();
  #sweep: ClockTimer | undefined;
  #state: "new" | "started" | "stopped" = "new";

  constructor(options: TransportOptionsInput, deps: TransportDeps = {}) {
    super();
    this.options = parseTransportOptions(options);
    this.#clock = deps.clock ?? systemClock;
    this.#log = (deps.logger ?? silentLogger).child({ component: "transport" });
    this.#policy = new DestinationPolicy(this.options.allowedDestinations);
    this.#shared = deps.shared;
    this.#screen = deps.screen;
    this.#limits = this.options.limits as ParseLimits;
  }

  /** The listeners as bound (after start). */
  get boundListeners(): readonly BoundListener[] {
    return this.#listeners.slice(0, this.#configured).map((l) => l.spec);
  }

  /** This process's own UDP sockets (SharedTransportHooks.ownUdpPorts), as bound. */
  get ownListeners(): readonly BoundListener[] {
    return this.#listeners.slice(this.#configured).map((l) => l.spec);
  }

  /** Open connection flows. */
  get flows(): readonly FlowInfo[] {
    return [...this.#flows.values()].map((f) => f.info);
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("TransportLayer.start() called twice");
    this.#state = "started";
    try {
      for (const spec of this.options.listen) this.#listeners.push(await this.#listen(spec));
      this.#configured = this.#listeners.length;
      const own = this.#shared?.ownUdpPorts;
      if (own !== undefined) {
        const udp = this.#listeners.filter((l) => l.kind === "udp");
        for (const [i, shared] of udp.entries()) {
          const port = own[i];
          if (port === undefined) continue;
          const mine = (await this.#listen({ ...shared.spec, port }, true)) as UdpListener;
          this.#listeners.push(mine);
          this.#viaPort.set(shared.spec, mine.spec.port);
          this.#ownSocket.set(shared, mine);
        }
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
    this.#scheduleSweep();
    this.#log.info({ listeners: this.boundListeners }, "transport started");
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    if (this.#sweep !== undefined) this.#clock.clearTimeout(this.#sweep);
    this.#sweep = undefined;
    for (const flow of this.#flows.values()) flow.close();
    const closing: Promise<void>[] = [];
    for (const l of this.#listeners) {
      if (l.kind === "udp") {
        closing.push(new Promise((resolve) => l.socket.close(() => resolve())));
      } else if (l.kind === "stream") {
        closing.push(new Promise((resolve) => l.server.close(() => resolve())));
      } else if (l.kind === "ws") {
        for (const client of l.wss.clients) client.terminate();
        closing.push(new Promise((resolve) => l.wss.close(() => resolve())));
        closing.push(new Promise((resolve) => l.http.close(() => resolve())));
        l.http.closeAllConnections();
      }
    }
    await Promise.all(closing);
    await Promise.allSettled(this.#connecting.values());
    for (const flow of this.#flows.values()) flow.close();
    this.#listeners = [];
    this.#log.info("transport stopped");
  }

  /**
   * Re-reads the certificate and key files of every TLS and WSS listener (operators rotate
   * certificates; the CLI calls this on SIGHUP). New connections use the new credentials.
   */
  async reloadTlsCredentials(): Promise<void> {
    for (const l of this.#listeners) {
      if (l.kind === "udp" || l.kind === "remote" || l.options.tls === undefined) continue;
      const credentials = await this.#readCredentials(l.options);
      if (l.kind === "stream") (l.server as TlsServer).setSecureContext(credentials);
      else (l.http as unknown as TlsServer).setSecureContext(credentials);
    }
    this.#log.info("TLS credentials reloaded");
  }

  /** The listener that sends for `protocol` (the first of that protocol, by family). */
  listenerFor(protocol: Protocol, family?: 4 | 6): BoundListener | undefined {
    return this.#listenerFor(protocol, family)?.spec;
  }

  /**
   * Sends a request (or a response on a path the caller chose) to `target`, reusing a
   * connection to that peer or opening one. Rejects with TransportError: destination not
   * allowed, no listener for the protocol, connection failed.
   */
  async send(
    message: SipMessage,
    target: SendTarget,
    options: SendOptions = {},
  ): Promise<SentMessage> {
    this.#assertStarted();
    const flow = await this.#flowTo(target);
    if (options.viaBranch !== undefined) {
      message.prependHeader("Via", this.#ourVia(flow.info, options.viaBranch));
    }
    return this.#write(message, flow);
  }

  /** Sends bytes again on a flow a message went out on (retransmissions, RFC 3261 §17). */
  resend(bytes: Buffer, flow: FlowInfo): void {
    const f = this.#existingFlow(flow.id);
    if (f === undefined) throw new TransportError(`flow ${flow.id} is closed`, "FLOW_CLOSED");
    this.#writeBytes(bytes, f);
  }

  /**
   * Sends a response where RFC 3261 §18.2.2 says, for a request that came on `requestFlow`:
   * back on its connection when reliable (or a new one to received/sent-by); for UDP from
   * the same socket to maddr, or received and rport, or sent-by.
   */
  async sendResponse(response: SipResponse, requestFlow: FlowInfo): Promise<SentMessage> {
    const sent = this.sendResponseNow(response, requestFlow);
    if (sent !== undefined) return sent;
    return this.#write(response, await this.#reopenResponseFlow(response.topVia!, requestFlow));
  }

  /**
   * sendResponse without waiting: sends and returns what went out, or returns undefined when
   * a connection must be opened first (then call sendResponse). The transaction layer's hot
   * path, which thus allocates no promise per response.
   */
  sendResponseNow(response: SipResponse, requestFlow: FlowInfo): SentMessage | undefined {
    this.#assertStarted();
    const via = response.topVia;
    if (via === undefined) throw new TransportError("response without Via", "SEND_FAILED");
    const flow = this.#responseFlow(via, requestFlow);
    return flow === undefined ? undefined : this.#write(response, flow);
  }

  /**
   * sendResponse for a response already serialized, as a stateless UAS builds it (RFC 3261
   * §8.2.7): `via` is the top Via of the request (as received, `received`/`rport` stamped),
   * which routes it per §18.2.2.
   */
  async sendResponseBytes(bytes: Buffer, via: Via, requestFlow: FlowInfo): Promise<SentMessage> {
    const sent = this.sendResponseBytesNow(bytes, via, requestFlow);
    if (sent !== undefined) return sent;
    const flow = await this.#reopenResponseFlow(via, requestFlow);
    this.#writeBytes(bytes, flow);
    return { flow: flow.info, bytes };
  }

  /** sendResponseBytes without waiting; undefined when a connection must be opened first. */
  sendResponseBytesNow(bytes: Buffer, via: Via, requestFlow: FlowInfo): SentMessage | undefined {
    this.#assertStarted();
    const flow = this.#responseFlow(via, requestFlow);
    if (flow === undefined) return undefined;
    if (!flow.info.reliable && bytes.length > MAX_DATAGRAM) {
      throw new TransportError(`${bytes.length} bytes do not fit a datagram`, "TOO_LARGE");
    }
    this.#writeBytes(bytes, flow);
    return { flow: flow.info, bytes };
  }

  /**
   * A message another process of a shared transport received and handed here (its
   * transaction lives here): parsed and delivered as if it had arrived on `flow`.
   */
  inject(bytes: Buffer, flow: FlowInfo): void {
    if (this.#state !== "started") return;
    let message: SipMessage | null;
    try {
      message = parseDatagram(bytes, { limits: this.#limits });
    } catch (e) {
      if (!(e instanceof SipParseError)) throw e;
      this.stats.parseErrors++;
      return;
    }
    if (message !== null) this.#deliver(message, flow, false);
  }

  /**
   * Sends bytes another process of a shared transport asked us to send, over a stream flow
   * we own (by id) or to a peer (reusing or opening a connection).
   */
  async sendBytes(target: SendTarget, bytes: Buffer): Promise<void> {
    this.#assertStarted();
    const flow = await this.#flowTo(target);
    this.#writeBytes(bytes, flow);
  }

  /** Closes a connection flow (no-op for UDP or a closed flow). */
  closeFlow(id: string): void {
    this.#flows.get(id)?.close();
  }

  // ---- sending --------------------------------------------------------------------------

  #write(message: SipMessage, flow: Flow): SentMessage {
    if (flow.info.reliable && message.field("content-length") === undefined) {
      // RFC 3261 §18.3: Content-Length is mandatory on stream transports.
      message.setHeader("Content-Length", String(message.body.length));
    }
    const bytes = message.toBuffer();
    if (!flow.info.reliable && bytes.length > MAX_DATAGRAM) {
      throw new TransportError(`${bytes.length} bytes do not fit a datagram`, "TOO_LARGE");
    }
    this.#writeBytes(bytes, flow);
    return { flow: flow.info, bytes };
  }

  #writeBytes(bytes: Buffer, flow: Flow): void {
    try {
      flow.write(bytes);
    } catch (e) {
      this.stats.sendErrors++;
      throw e instanceof TransportError
        ? e
        : new TransportError(`send on ${flow.info.id} failed`, "SEND_FAILED", { cause: e });
    }
    flow.lastActivity = this.#clock.now();
    this.stats.sent++;
  }

  /**
   * Where RFC 3261 §18.2.2 sends a response to a request with top Via `via` that came on
   * `requestFlow`; undefined when its connection is closed (see #reopenResponseFlow).
   */
  #responseFlow(via: Via, requestFlow: FlowInfo): Flow | undefined {
    if (requestFlow.reliable) {
      return (
        this.#flows.get(requestFlow.id) ?? this.#remoteFlowById(requestFlow.id, requestFlow.remote)
      );
    }
    let address: string;
    let port: number;
    if (via.maddr !== undefined) {
      address = hostAddress(via.maddr);
      port = via.port ?? 5060;
    } else if (via.received !== undefined) {
      address = hostAddress(via.received);
      port = typeof via.rport === "number" ? via.rport : (via.port ?? 5060);
    } else {
      address = hostAddress(via.host);
      port = via.port ?? 5060;
    }
    this.#checkDestination(address);
    const index =
      (requestFlow as Partial<UdpFlowInfo>).listenerIndex ??
      parseUdpFlowId(requestFlow.id)?.listenerIndex;
    const listener = index === undefined ? undefined : this.#listeners[index];
    if (listener?.kind !== "udp") {
      throw new TransportError(`no UDP socket for flow ${requestFlow.id}`, "NO_LISTENER");
    }
    // The usual case: back to the very address and port the request came from.
    const remote = requestFlow.remote;
    return remote.address === address && remote.port === port
      ? this.#udpFlowOf(listener, requestFlow as UdpFlowInfo)
      : this.#udpFlow(listener, index!, { address, port });
  }

  /**
   * RFC 3261 §18.2.2: "If the connection is no longer open, the server SHOULD open a
   * connection to the IP address in the received parameter, if present, using the port in the
   * sent-by value".
   */
  async #reopenResponseFlow(via: Via, requestFlow: FlowInfo): Promise<Flow> {
    const address = via.received ?? hostAddress(via.host);
    const port = via.port ?? defaultPort(requestFlow.protocol);
    return this.#flowTo({ protocol: requestFlow.protocol, address, port });
  }

  #assertStarted(): void {
    if (this.#state !== "started") throw new TransportError("transport is not running", "STOPPED");
  }

  #checkDestination(address: string): void {
    // We speak unicast SIP only: a multicast or broadcast Via maddr, received or sent-by is
    // an amplification attempt (RFC 4475 §3.3.10), whatever allowedDestinations says.
    if (this.#policy.allows(address) && !NEVER_A_DESTINATION.allows(address)) return;
    this.stats.refusedDestinations++;
    this.#log.warn({ address }, "destination not in allowedDestinations; not sent");
    throw new TransportError(`destination ${address} is not allowed`, "DESTINATION_NOT_ALLOWED");
  }

  /** The flow `id` names; `peer` describes it when another process owns it. */
  #existingFlow(id: string, peer?: Endpoint): Flow | undefined {
    const open = this.#flows.get(id);
    if (open !== undefined) return open;
    const remote = this.#remoteFlowById(id, peer);
    if (remote !== undefined) return remote;
    const udp = parseUdpFlowId(id);
    const listener = udp === undefined ? undefined : this.#listeners[udp.listenerIndex];
    if (listener?.kind !== "udp") return undefined;
    return this.#udpFlow(listener, udp!.listenerIndex, udp!.remote);
  }

  async #flowTo(target: SendTarget): Promise<Flow> {
    if (target.flowId !== undefined) {
      const existing = this.#existingFlow(target.flowId, {
        address: hostAddress(target.address),
        port: target.port,
      });
      if (existing !== undefined) {
        this.#checkDestination(existing.info.remote.address);
        return existing;
      }
    }
    const address = hostAddress(target.address);
    this.#checkDestination(address);
    if (target.protocol === "udp") {
      const family = isIP(address) === 6 ? 6 : 4;
      const configured = this.#listenerFor("udp", family);
      if (configured?.kind !== "udp") {
        throw new TransportError(`no UDP listener for IPv${family}`, "NO_LISTENER");
      }
      // A shared transport sends new requests from this process's own socket, so that the
      // responses (to the source port, RFC 3581) come back to this process.
      const listener = this.#ownSocket.get(configured) ?? configured;
      return this.#udpFlow(listener, this.#listeners.indexOf(listener), {
        address,
        port: target.port,
      });
    }
    const owner = this.#listenerFor(target.protocol, isIP(address) === 6 ? 6 : 4);
    if (owner?.kind === "remote") return this.#remoteFlow(owner, { ...target, address });
    const peer = `${target.protocol}|${address}|${target.port}`;
    const reuse = this.#byPeer.get(peer);
    if (reuse !== undefined) {
      const flow = this.#flows.get(reuse);
      if (flow !== undefined) return flow;
    }
    let pending = this.#connecting.get(peer);
    if (pending === undefined) {
      pending = this.#connect({ ...target, address }).finally(() => this.#connecting.delete(peer));
      this.#connecting.set(peer, pending);
    }
    return pending;
  }

  /** A stream flow of another process, known by id (with its description when we have it). */
  #remoteFlowById(id: string, peer?: Endpoint): Flow | undefined {
    if (this.#shared === undefined || id.startsWith("udp|")) return undefined;
    const protocol = id.slice(0, id.indexOf("#")) as Protocol;
    const listener = this.#listenerFor(protocol);
    if (listener?.kind !== "remote") return undefined;
    // Without a description (a retransmission) the owner still finds the flow by its id.
    const remote = peer ?? { address: "", port: 0 };
    return this.#remoteFlow(listener, {
      protocol,
      address: remote.address,
      port: remote.port,
      flowId: id,
    });
  }

  /** Writes go to the process that owns the stream listener (it opens or reuses the flow). */
  #remoteFlow(listener: RemoteListener, target: SendTarget): Flow {
    const shared = this.#shared!;
    const secure = target.protocol === "tls" || target.protocol === "wss";
    return {
      info: {
        id: target.flowId ?? `${target.protocol}#remote`,
        protocol: target.protocol,
        local: { address: listener.spec.address, port: listener.spec.port },
        remote: { address: target.address, port: target.port },
        reliable: true,
        secure,
      },
      lastActivity: 0,
      write: (bytes: Buffer) => shared.sendElsewhere(target, bytes),
      close: () => undefined,
    };
  }

  /** A flow to write on for a UDP flow we already described (no new description). */
  #udpFlowOf(listener: UdpListener, info: UdpFlowInfo): Flow {
    const socket = listener.socket;
    return {
      info,
      lastActivity: 0,
      write: (bytes: Buffer) => socket.send(bytes, info.remote.port, info.remote.address),
      close: () => undefined,
    };
  }

  #udpFlow(listener: UdpListener, index: number, remote: Endpoint): UdpFlow {
    return new UdpFlow(listener.socket, index, listener.spec, remote);
  }

  #listenerFor(protocol: Protocol, family?: 4 | 6): Listener | undefined {
    const same = this.#listeners
      .slice(0, this.#configured)
      .filter((l) => l.spec.protocol === protocol);
    return (
      same.find((l) => family === undefined || (isIP(l.spec.address) === 6 ? 6 : 4) === family) ??
      same[0]
    );
  }

  /** The Via we push: sent-by is the listener of the flow's protocol (RFC 3261 §18.1.1). */
  #ourVia(flow: FlowInfo, branch: string): string {
    const family = isIP(flow.remote.address) === 6 ? 6 : 4;
    const listener = this.#listenerFor(flow.protocol, family)?.spec;
    // A client without a listener of that kind (a browser-like WebSocket client) uses its
    // connection's local address, as RFC 7118 §5.2 allows any sent-by.
    const host = listener?.advertise ?? flow.local.address;
    const port =
      (listener === undefined ? undefined : this.#viaPort.get(listener)) ??
      listener?.port ??
      flow.local.port;
    const sentBy = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
    return `SIP/2.0/${viaTransport(flow.protocol)} ${sentBy};branch=${branch};rport`;
  }

  async #connect(target: SendTarget & { address: string }): Promise<Flow> {
    const { protocol, address, port } = target;
    const family = isIP(address) === 6 ? 6 : 4;
    const local = this.#listenerFor(protocol, family)?.spec.address;
    const localAddress = local !== undefined && !isWildcard(local) ? local : undefined;
    const timeoutMs = this.options.connectTimeoutMs;
    const log = this.#log;

    if (protocol === "ws" || protocol === "wss") {
      const host = family === 6 ? `[${address}]` : address;
      const ca = await this.#clientCa();
      const ws = new WebSocket(`${protocol}://${host}:${port}/`, "sip", {
        localAddress,
        handshakeTimeout: timeoutMs,
        maxPayload: this.#limits.maxMessageBytes,
        rejectUnauthorized: this.options.tlsClient.rejectUnauthorized,
        ...(ca === undefined ? {} : { ca }),
        ...(target.serverName === undefined ? {} : { servername: target.serverName }),
      });
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", (e) => {
          reject(
            new TransportError(`WebSocket to ${host}:${port} failed`, "CONNECT_FAILED", {
              cause: e,
            }),
          );
        });
      });
      const socket = (ws as unknown as { _socket: NetSocket })._socket;
      const flow = new WsFlow(
        ws,
        protocol,
        { address: plainAddress(socket.localAddress ?? ""), port: socket.localPort ?? 0 },
        { address, port },
        this.options.maxWriteBufferBytes,
      );
      this.#adoptWs(flow);
      log.debug({ flow: flow.info }, "connected");
      return flow;
    }

    const ca = protocol === "tls" ? await this.#clientCa() : undefined;
    const tcp = netConnect({ host: address, port, localAddress });
    const socket: NetSocket =
      protocol === "tls"
        ? tlsConnect({
            socket: tcp,
            host: target.serverName ?? address,
            servername: target.serverName ?? (isIP(address) ? undefined : address),
            rejectUnauthorized: this.options.tlsClient.rejectUnauthorized,
            ...(ca === undefined ? {} : { ca }),
          })
        : tcp;
    const ready = protocol === "tls" ? "secureConnect" : "connect";
    await new Promise<void>((resolve, reject) => {
      const timer = this.#clock.setTimeout(() => {
        socket.destroy();
        reject(new TransportError(`connect to ${address}:${port} timed out`, "CONNECT_FAILED"));
      }, timeoutMs);
      socket.once(ready, () => {
        this.#clock.clearTimeout(timer);
        resolve();
      });
      socket.once("error", (e) => {
        this.#clock.clearTimeout(timer);
        reject(
          new TransportError(`connect to ${address}:${port} failed`, "CONNECT_FAILED", {
            cause: e,
          }),
        );
      });
    });
    if (this.#state !== "started") {
      socket.destroy();
      throw new TransportError("transport stopped while connecting", "STOPPED");
    }
    if (protocol === "tls") tcp.on("error", () => socket.destroy());
    const flow = new StreamFlow(socket, protocol, this.options.maxWriteBufferBytes);
    this.#adoptStream(flow);
    log.debug({ flow: flow.info }, "connected");
    return flow;
  }

  async #clientCa(): Promise<Buffer | undefined> {
    const file = this.options.tlsClient.caFile;
    return file === undefined ? undefined : readFile(file);
  }

  // ---- receiving ------------------------------------------------------------------------

  async #listen(options: ListenerOptions, exclusive = false): Promise<Listener> {
    const { protocol, address } = options;
    const family = isIP(address);
    if (family === 0) throw new RangeError(`transport.listen: ${address} is not an IP address`);
    if (protocol !== "udp" && this.#shared?.ownsStreams === false) {
      if (options.port === 0)
        throw new RangeError("transport.listen: a shared listener needs its port");
      return { kind: "remote", spec: bound(options, options.port) };
    }
    if (protocol === "udp") {
      const socket = createSocket({
        type: family === 6 ? "udp6" : "udp4",
        reuseAddr: false,
        lookup: literalLookup,
      });
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        // Not exclusive in a cluster worker: the primary shares one socket among workers.
        socket.bind({ port: options.port, address, exclusive }, () => {
          socket.off("error", reject);
          resolve();
        });
      });
      this.#sizeBuffers(socket);
      const spec = bound(options, socket.address().port);
      const listener: UdpListener = { kind: "udp", spec, socket };
      const index = this.#listeners.length;
      socket.on("message", (bytes, rinfo) => {
        this.#onDatagram(listener, index, bytes, {
          address: plainAddress(rinfo.address),
          port: rinfo.port,
        });
      });
      socket.on("error", (e) => this.#log.warn({ err: e }, "UDP socket error"));
      return listener;
    }

    if (protocol === "tcp" || protocol === "tls") {
      const server =
        protocol === "tls"
          ? createTlsServer(await this.#readCredentials(options))
          : createNetServer();
      server.maxConnections = this.options.maxConnections;
      server.on(protocol === "tls" ? "secureConnection" : "connection", (socket: NetSocket) => {
        this.#accept(socket, protocol);
      });
      // A TLS handshake that fails is the peer's problem, not ours.
      server.on("tlsClientError", (e) => this.#log.debug({ err: e }, "TLS handshake failed"));
      server.on("error", (e) => this.#log.error({ err: e }, "listener error"));
      await listenOn(server, options.port, address);
      const port = (server.address() as { port: number }).port;
      return { kind: "stream", spec: bound(options, port), server, options };
    }

    const http =
      protocol === "wss"
        ? createHttpsServer(await this.#readCredentials(options))
        : createHttpServer();
    http.maxConnections = this.options.maxConnections;
    const wss = new WebSocketServer({
      server: http,
      maxPayload: this.#limits.maxMessageBytes,
      // RFC 7118 §4.1: the client offers the "sip" subprotocol; refuse those that do not.
      verifyClient: (info: { req: { headers: Record<string, string | string[] | undefined> } }) =>
        offersSip(info.req.headers["sec-websocket-protocol"]),
      handleProtocols: (protocols: Set<string>) => (protocols.has("sip") ? "sip" : false),
    });
    wss.on("connection", (ws, req) => {
      const socket = req.socket;
      // Reset before we took it: no address to answer to (see #accept).
      if (socket.remoteAddress === undefined) {
        ws.terminate();
        return;
      }
      const remote = {
        address: plainAddress(socket.remoteAddress),
        port: socket.remotePort ?? 0,
      };
      if (!this.#admit(remote.address)) {
        ws.terminate();
        return;
      }
      const flow = new WsFlow(
        ws,
        protocol,
        { address: plainAddress(socket.localAddress ?? ""), port: socket.localPort ?? 0 },
        remote,
        this.options.maxWriteBufferBytes,
      );
      this.#adoptWs(flow, remote.address);
    });
    wss.on("error", (e) => this.#log.error({ err: e }, "WebSocket listener error"));
    await listenOn(http, options.port, address);
    const port = (http.address() as { port: number }).port;
    return { kind: "ws", spec: bound(options, port), http, wss, options };
  }

  async #readCredentials(options: ListenerOptions): Promise<{ key: Buffer; cert: Buffer }> {
    const tls = options.tls!;
    const [key, cert] = await Promise.all([readFile(tls.keyFile), readFile(tls.certFile)]);
    return { key, cert };
  }

  /** Per-source connection cap: false (and counted) when this source has too many. */
  /** Asks for udpBufferBytes; the kernel may give less (rmem_max), which is logged. */
  #sizeBuffers(socket: DgramSocket): void {
    const want = this.options.udpBufferBytes;
    try {
      socket.setRecvBufferSize(want);
      socket.setSendBufferSize(want);
    } catch (e) {
      this.#log.warn({ err: e, want }, "UDP buffer size not set");
      return;
    }
    // Linux reports double what it grants (bookkeeping overhead counted in).
    const got = socket.getRecvBufferSize();
    if (got < want) {
      this.#log.info({ want, got }, "UDP receive buffer smaller than asked (net.core.rmem_max)");
    }
  }

  #admit(source: string): boolean {
    const count = this.#perSource.get(source) ?? 0;
    if (count >= this.options.maxConnectionsPerSource) {
      this.stats.connectionsRefused++;
      this.#log.warn({ source, count }, "too many connections from one source; refused");
      return false;
    }
    this.#perSource.set(source, count + 1);
    this.stats.connectionsAccepted++;
    return true;
  }

  #release(source: string): void {
    const count = (this.#perSource.get(source) ?? 1) - 1;
    if (count <= 0) this.#perSource.delete(source);
    else this.#perSource.set(source, count);
  }

  #accept(socket: NetSocket, protocol: "tcp" | "tls"): void {
    // A peer that reset the connection before we took it has no address any more
    // (getpeername fails): nothing can be answered there, and an empty source would be
    // stamped into Via as an empty `received=`.
    const remote = socket.remoteAddress;
    if (this.#state !== "started" || remote === undefined) {
      socket.destroy();
      return;
    }
    const source = plainAddress(remote);
    if (!this.#admit(source)) {
      socket.destroy();
      return;
    }
    const flow = new StreamFlow(socket, protocol, this.options.maxWriteBufferBytes);
    this.#adoptStream(flow, source);
  }

  /** Registers a connection flow and wires its reading; `source` is set for accepted ones. */
  #adoptStream(flow: StreamFlow, source?: string): void {
    this.#register(flow);
    // RFC 5626: the side that opened the connection pings; we answer on accepted ones.
    const framer = new StreamFramer({
      limits: this.#limits,
      role: source === undefined ? "client" : "server",
    });
    const socket = flow.socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      const now = this.#clock.now();
      flow.lastActivity = now;
      const items = framer.push(chunk);
      if (!framer.inMessage) flow.partialSince = undefined;
      else if (items.length > 0 || flow.partialSince === undefined) flow.partialSince = now;
      for (const item of items) {
        switch (item.kind) {
          case "message":
            this.#deliver(item.message, flow.info);
            break;
          case "error":
            this.#refuse(item.error, item.bytes, flow);
            if (item.error.fatal) socket.end();
            break;
          case "ping":
            // RFC 5626 §4.4.1: answer a double-CRLF ping with a single CRLF.
            if (socket.writable) socket.write(CRLF);
            break;
          case "pong":
            this.emit("pong", flow.info);
            break;
        }
      }
    });
    socket.on("error", (e) => this.#log.debug({ err: e, flow: flow.info.id }, "connection error"));
    socket.once("close", () => {
      this.#unregister(flow);
      if (source !== undefined) this.#release(source);
    });
  }

  #adoptWs(flow: WsFlow, source?: string): void {
    this.#register(flow);
    flow.ws.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
      flow.lastActivity = this.#clock.now();
      const bytes = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data);
      if (this.#screen !== undefined && !this.#screen(bytes)) return;
      this.#receiveWhole(bytes, flow, parseWebSocketMessage);
    });
    flow.ws.on("error", (e) => this.#log.debug({ err: e, flow: flow.info.id }, "WebSocket error"));
    flow.ws.once("close", () => {
      this.#unregister(flow);
      if (source !== undefined) this.#release(source);
    });
  }

  #register(flow: Flow): void {
    flow.lastActivity = this.#clock.now();
    this.#flows.set(flow.info.id, flow);
    const { protocol, remote } = flow.info;
    this.#byPeer.set(`${protocol}|${remote.address}|${remote.port}`, flow.info.id);
  }

  #unregister(flow: Flow): void {
    if (!this.#flows.delete(flow.info.id)) return;
    const { protocol, remote } = flow.info;
    const peer = `${protocol}|${remote.address}|${remote.port}`;
    if (this.#byPeer.get(peer) === flow.info.id) this.#byPeer.delete(peer);
    this.emit("flowClosed", flow.info);
  }

  #onDatagram(listener: UdpListener, index: number, bytes: Buffer, remote: Endpoint): void {
    if (this.#screen !== undefined && !this.#screen(bytes)) return;
    this.#receiveWhole(bytes, this.#udpFlow(listener, index, remote), parseDatagram);
  }

  /** One whole message (a datagram, a WebSocket message): parse it, or answer why not. */
  #receiveWhole(
    bytes: Buffer,
    flow: Flow,
    parse: (bytes: Buffer, options: { limits: ParseLimits }) => SipMessage | null,
  ): void {
    let message: SipMessage | null;
    try {
      message = parse(bytes, { limits: this.#limits });
    } catch (e) {
      if (!(e instanceof SipParseError)) throw e;
      this.#refuse(e, bytes, flow);
      return;
    }
    if (message !== null) this.#deliver(message, flow.info);
  }

  /** Answers (or drops) what did not parse; never fatal to us. */
  #refuse(error: SipParseError, bytes: Buffer, flow: Flow): void {
    this.stats.parseErrors++;
    this.#log.warn(
      { code: error.code, reason: error.message, flow: flow.info.id, remote: flow.info.remote },
      "malformed SIP message",
    );
    const reply = buildParseErrorResponse(error, bytes);
    if (reply === undefined || !this.#policy.allows(flow.info.remote.address)) return;
    try {
      this.#writeBytes(reply, flow);
    } catch (e) {
      this.#log.debug({ err: e }, "could not send the error response");
    }
  }

  #deliver(message: SipMessage, flow: FlowInfo, steer = true): void {
    try {
      // A message handed to the process that owns it is counted there, once.
      if (steer && this.#shared?.steer(message.wireBytes!, message, flow) === true) return;
      this.stats.received++;
      if (message.type === "request") stampVia(message, flow.remote);
      this.emit("message", { message, flow });
    } catch (e) {
      // Headers parse on demand, so a listener can meet a malformed one: a message error,
      // never a process error (the socket handlers above us have no one to throw to).
      if (e instanceof SipParseError) {
        this.stats.parseErrors++;
        this.#log.debug({ err: e, flow: flow.id }, "message dropped: malformed header");
      } else {
        // A bug above us: one message lost, logged loudly, the listener keeps serving.
        this.#log.error({ err: e, flow: flow.id }, "message handler failed");
      }
    }
  }

  // ---- idle connections -------------------------------------------------------------------

  #scheduleSweep(): void {
    const { idleTimeoutMs, messageTimeoutMs } = this.options;
    const every = Math.min(
      30_000,
      Math.max(1_000, Math.floor(Math.min(idleTimeoutMs, messageTimeoutMs) / 4)),
    );
    this.#sweep = this.#clock.setTimeout(() => {
      const now = this.#clock.now();
      for (const flow of this.#flows.values()) {
        if (flow.lastActivity <= now - idleTimeoutMs) {
          this.#log.debug({ flow: flow.info.id }, "idle connection closed");
          flow.close();
        } else if (flow.partialSince !== undefined && flow.partialSince <= now - messageTimeoutMs) {
          flow.partialSince = undefined;
          this.stats.slowMessages++;
          this.#log.info(
            { flow: flow.info.id, remote: flow.info.remote },
            "a message was not whole within messageTimeoutMs; connection closed",
          );
          flow.close();
        }
      }
      if (this.#state === "started") this.#scheduleSweep();
    }, every);
  }
}

/**
 * RFC 3261 §18.2.1 and RFC 3581 §4: a request's top Via gets `received` when its sent-by is
 * a name or another address than the packet's source, or when it asks for `rport` (whose
 * empty value becomes the source port).
 */
function stampVia(message: SipMessage, source: Endpoint): void {
  const via = message.topVia;
  if (via === undefined) return;
  const sentBy = plainAddress(hostAddress(via.host)).toLowerCase();
  const differs = isIP(sentBy) === 0 || sentBy !== source.address.toLowerCase();
  if (!differs && via.rport === undefined) return;
  let params = via.params.with("received", source.address);
  if (via.rport === null) params = params.with("rport", String(source.port));
  message.replaceFirstValue("via", formatVia({ ...via, params }));
}

/** A host as a socket address: IPv6 without its brackets. */
/**
 * dgram passes every send's address through `lookup` (dns.lookup answers even an IP literal
 * on the next tick, a deferral per datagram); the addresses we send to are literals, so they
 * are answered at once.
 */
const literalLookup = ((
  address: string,
  family: number,
  callback: (err: Error | null, address: string, family: number) => void,
): void => {
  const literal = isIP(address);
  if (literal !== 0) callback(null, address, literal);
  else dnsLookup(address, family, callback);
}) as unknown as typeof dnsLookup;

function hostAddress(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function isWildcard(address: string): boolean {
  return address === "0.0.0.0" || address === "::";
}

function offersSip(header: string | string[] | undefined): boolean {
  const values = Array.isArray(header) ? header.join(",") : (header ?? "");
  return values.split(",").some((p) => p.trim().toLowerCase() === "sip");
}

function bound(options: ListenerOptions, port: number): BoundListener {
  return {
    protocol: options.protocol,
    address: options.address,
    port,
    advertise: options.advertise ?? options.address,
  };
}

async function listenOn(
  server: NetServer | HttpServer,
  port: number,
  address: string,
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, address, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
