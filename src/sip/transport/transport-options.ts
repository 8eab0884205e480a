import { z } from "zod";
import { DEFAULT_PARSE_LIMITS } from "../message/index.js";

/** Close a connection after this long without a byte either way (RFC 5626 keeps it alive). */
export const DEFAULT_IDLE_TIMEOUT_MS = 600_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/**
 * A message begun on a connection must be whole within this long (as OpenSIPS's
 * tcp_max_msg_time): a peer trickling a byte now and then cannot hold a connection open.
 */
export const DEFAULT_MESSAGE_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_CONNECTIONS = 10_000;
export const DEFAULT_MAX_CONNECTIONS_PER_SOURCE = 64;
/** A peer that lets this much of our output pile up unread is cut off. */
export const DEFAULT_MAX_WRITE_BUFFER_BYTES = 1_048_576;
/**
 * UDP socket buffers, as Kamailio's maxbuffer: a burst (or a pause for garbage collection)
 * queues here instead of being dropped. The kernel caps it at net.core.rmem_max/wmem_max.
 */
export const DEFAULT_UDP_BUFFER_BYTES = 4 * 1_048_576;
/** Everywhere: an operator's proxy must reach its phones. Tests narrow it to loopback. */
export const DEFAULT_ALLOWED_DESTINATIONS = ["0.0.0.0/0", "::/0"];

const tlsFiles = z.object({
  /** PEM certificate chain file. */
  certFile: z.string().min(1),
  /** PEM private key file. */
  keyFile: z.string().min(1),
});

export const listenerSchema = z
  .object({
    protocol: z.enum(["udp", "tcp", "tls", "ws", "wss"]),
    /** IP address to bind (v4 or v6). */
    address: z.string().min(1),
    /** Port to bind; 0 picks a free one (see TransportLayer.listeners). */
    port: z.number().int().min(0).max(65535),
    /** Host written into Via sent-by and Contact; defaults to `address`. */
    advertise: z.string().min(1).optional(),
    /** Certificate and key for tls and wss listeners. */
    tls: tlsFiles.optional(),
  })
  .refine((l) => (l.protocol === "tls" || l.protocol === "wss") === (l.tls !== undefined), {
    message: "tls and wss listeners need tls.certFile and tls.keyFile; others take none",
    path: ["tls"],
  });

export const transportOptionsSchema = z.object({
  listen: z.array(listenerSchema).default([]),
  /** CIDR blocks every send must fall in (DESIGN.md); others are refused and logged. */
  allowedDestinations: z.array(z.string().min(1)).default(DEFAULT_ALLOWED_DESTINATIONS),
  idleTimeoutMs: z.number().int().positive().default(DEFAULT_IDLE_TIMEOUT_MS),
  connectTimeoutMs: z.number().int().positive().default(DEFAULT_CONNECT_TIMEOUT_MS),
  messageTimeoutMs: z.number().int().positive().default(DEFAULT_MESSAGE_TIMEOUT_MS),
  maxConnections: z.number().int().positive().default(DEFAULT_MAX_CONNECTIONS),
  maxConnectionsPerSource: z.number().int().positive().default(DEFAULT_MAX_CONNECTIONS_PER_SOURCE),
  maxWriteBufferBytes: z.number().int().positive().default(DEFAULT_MAX_WRITE_BUFFER_BYTES),
  udpBufferBytes: z.number().int().positive().default(DEFAULT_UDP_BUFFER_BYTES),
  /** Bounds of the codec (message size, header count …). */
  limits: z
    .object({
      maxMessageBytes: z.number().int().positive(),
      maxHeaders: z.number().int().positive(),
      maxHeaderBytes: z.number().int().positive(),
      maxUriBytes: z.number().int().positive(),
      maxParams: z.number().int().positive(),
    })
    .partial()
    .default({}),
  /** How outgoing TLS and WSS connections check the server. */
  tlsClient: z
    .object({
      /** Extra trusted CA certificates (PEM file). */
      caFile: z.string().min(1).optional(),
      /** Refuse servers whose certificate does not verify (default true). */
      rejectUnauthorized: z.boolean().default(true),
    })
    .default({ rejectUnauthorized: true }),
});

export type ListenerOptions = z.infer<typeof listenerSchema>;
export type TransportOptions = z.infer<typeof transportOptionsSchema>;
export type TransportOptionsInput = z.input<typeof transportOptionsSchema>;

/** Validates, applies defaults and freezes; a bad option throws naming its path. */
export function parseTransportOptions(input: TransportOptionsInput): Readonly<TransportOptions> {
  const result = transportOptionsSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new RangeError(`transport.${issue.path.join(".")}: ${issue.message}`);
  }
  const options = result.data;
  return Object.freeze({ ...options, limits: { ...DEFAULT_PARSE_LIMITS, ...options.limits } });
}
