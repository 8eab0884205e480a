// The DNS front's wire code and answers (RFC 1035, 2782, 2308, 3263, 6891, 7766) on a real
// ProxyTable and Selector fed with reports on a fake clock: queries encoded by dns-packet are
// read as they were written, responses decode with dns-packet, TC and the EDNS size are
// honoured, damaged input never throws, and TCP framing, idle timeout and the connection cap
// hold on real sockets.
import assert from "node:assert/strict";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { describe, test } from "node:test";
import fc from "fast-check";
import { decode, encode, type Answer, type DecodedPacket, type Packet } from "dns-packet";
import {
  DNS_MAX_TCP_QUERY_BYTES,
  DnsFront,
  SRV_PRIORITY_CHOSEN,
  SRV_PRIORITY_OTHERS,
  Selector,
  isDnsName,
  parseQuery,
  srvWeight,
  type DnsFrontOptions,
  type ProxyTable,
} from "../../src/monitor/index.js";
import {
  CLASSIC_UDP_BYTES,
  ODD_NAME,
  RCODES,
  assembleResponse,
  bareReply,
  encodeRecords,
  wireZone,
} from "../../src/monitor/dns-wire.js";
import type { FakeClock } from "../helpers/fake-clock.js";
import { openHandles } from "../helpers/handles.js";
import { report, tableOnFakeClock } from "./reports.js";

const ZONE = "sipsteer.test";
const WIRE_ZONE = wireZone(ZONE);

function query(name: string, type: string, extra: Partial<Packet> = {}): Buffer {
  return encode({
    type: "query",
    id: 4242,
    flags: 0,
    questions: [{ name, type: type as "A" }],
    ...extra,
  });
}

/** A query with an OPT record offering `udpSize` (RFC 6891). */
function ednsQuery(name: string, type: string, udpSize: number, version = 0): Buffer {
  const opt = { name: ".", type: "OPT", udpPayloadSize: udpSize, ednsVersion: version };
  return query(name, type, { additionals: [opt as unknown as Answer] });
}

/** Three idle proxies on loopback addresses with calls capacities 100, 200 and 300. */
function fleet(): { clock: FakeClock; table: ProxyTable; selector: Selector } {
  const { clock, table } = tableOnFakeClock({ proxies: ["p1", "p2", "p3"] });
  for (const [i, id] of ["p1", "p2", "p3"].entries()) {
    table.ingest(
      report(id, {
        capacity: { calls: 100 * (i + 1), media: 0 },
        uris: {
          udp: `sip:127.0.0.1${i + 1}:5060`,
          tcp: `sip:127.0.0.1${i + 1}:5060;transport=tcp`,
          tls: `sips:[::1]:506${i + 1}`,
        },
      }),
      { via: "push" },
    );
  }
  return { clock, table, selector: new Selector({ table }) };
}

function front(
  parts: { clock: FakeClock; table: ProxyTable; selector: Selector },
  over: Partial<DnsFrontOptions> = {},
): DnsFront {
  const { clock, table, selector } = parts;
  return new DnsFront({
    listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
    zone: ZONE,
    select: (t) => selector.select(t),
    ranked: (t) => selector.ranked(t),
    proxyUris: (label) => {
      const status = table.status(label);
      return status === undefined ? undefined : (status.report?.uris ?? {});
    },
    clock,
    serial: 7,
    ...over,
  });
}

/** The front's response to `message`, decoded. */
async function ask(f: DnsFront, message: Buffer, tcp = false): Promise<DecodedPacket> {
  const out = await f.answer(message, tcp);
  assert.ok(out !== undefined, "an answer");
  return decode(tcp ? out.subarray(2) : out);
}

/** A decoded record's data and TTL (the union type of dns-packet's records has no common one). */
function dataOf<T>(record: Answer | undefined): T {
  return (record as unknown as { data: T }).data;
}

function ttlOf(record: Answer | undefined): number | undefined {
  return (record as { ttl?: number } | undefined)?.ttl;
}

/** dns-packet decodes the header's rcode, which its types leave out. */
function rcodeOf(packet: DecodedPacket): string | undefined {
  return (packet as DecodedPacket & { rcode?: string }).rcode;
}

describe("DNS wire - reading queries", () => {
  test("a query reads back as encoded: the name below the zone folded to lower case", () => {
    const q = parseQuery(query("_SIP._Udp.SipSteer.TEST", "SRV"), WIRE_ZONE);
    assert.ok(q !== undefined && !q.malformed);
    assert.equal(q.id, 4242);
    assert.equal(q.relative, "_sip._udp");
    assert.equal(q.qtype, 33);
    assert.equal(q.qclass, 1);
    assert.equal(q.edns, undefined);
    assert.equal(parseQuery(query("sipsteer.test", "SOA"), WIRE_ZONE)?.relative, "");
    assert.equal(parseQuery(query("example.com", "A"), WIRE_ZONE)?.relative, undefined);
    assert.equal(parseQuery(query("xsipsteer.test", "A"), WIRE_ZONE)?.relative, undefined);
  });

  test("EDNS: the requestor's UDP size (at least 512) and version", () => {
    assert.deepEqual(parseQuery(ednsQuery(ZONE, "SOA", 4096), WIRE_ZONE)?.edns, {
      udpSize: 4096,
      version: 0,
    });
    assert.equal(parseQuery(ednsQuery(ZONE, "SOA", 100), WIRE_ZONE)?.edns?.udpSize, 512);
  });

  test("a label holding a dot or the zone's bytes inside it is not taken for zone names", () => {
    // One label "a.p1" below the zone: not the two labels a and p1.
    const dotted = Buffer.concat([
      Buffer.from([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4]),
      Buffer.from("a.p1"),
      WIRE_ZONE.wire,
      Buffer.from([0, 1, 0, 1]),
    ]);
    assert.equal(parseQuery(dotted, WIRE_ZONE)?.relative, ODD_NAME);
    // One label "ab\x08sipsteer" then "test": ends with the zone's bytes, is outside the zone.
    const inner = Buffer.concat([
      Buffer.from([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11]),
      Buffer.from("ab\x08sipsteer", "latin1"),
      Buffer.from("\x04test\x00", "latin1"),
      Buffer.from([0, 1, 0, 1]),
    ]);
    assert.equal(parseQuery(inner, WIRE_ZONE)?.relative, undefined);
  });

  test("dropped: shorter than a header, or a response; malformed: the rest of the damage", () => {
    assert.equal(parseQuery(Buffer.alloc(11), WIRE_ZONE), undefined);
    const response = encode({ type: "response", id: 1, questions: [{ name: ZONE, type: "A" }] });
    assert.equal(parseQuery(response, WIRE_ZONE), undefined);
    const good = query(ZONE, "SOA");
    const cases: [string, Buffer][] = [
      ["header only", good.subarray(0, 12)],
      ["question cut short", good.subarray(0, good.length - 2)],
      ["two questions", Buffer.from(good).fill(2, 5, 6)],
      ["no question", Buffer.from(good).fill(0, 5, 6)],
      [
        "a pointer in the question",
        Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]),
      ],
    ];
    const twoOpts = encode({
      type: "query",
      id: 9,
      questions: [{ name: ZONE, type: "SOA" }],
      additionals: [
        { name: ".", type: "OPT", udpPayloadSize: 1232 } as unknown as Answer,
        { name: ".", type: "OPT", udpPayloadSize: 1232 } as unknown as Answer,
      ],
    });
    cases.push(["two OPT records", twoOpts]);
    for (const [what, message] of cases) {
      const q = parseQuery(message, WIRE_ZONE);
      assert.ok(q !== undefined, what);
      assert.equal(q.malformed, true, what);
    }
  });

  test("zone names: host-name labels, at most 253 characters", () => {
    assert.ok(isDnsName("sipsteer.test"));
    assert.ok(isDnsName("a-b.c1"));
    for (const bad of ["", ".", "a..b", "-a.test", "a_b.test", "a b", `${"x".repeat(64)}.test`]) {
      assert.equal(isDnsName(bad), false, bad);
    }
  });
});

describe("DNS wire - assembling responses", () => {
  const soa = encodeRecords([
    {
      name: ZONE,
      type: "SOA",
      ttl: 5,
      data: { mname: `ns.${ZONE}`, rname: `hostmaster.${ZONE}`, serial: 1, minimum: 5 },
    },
  ]);

  test("the question is echoed as it came (letters' case too) and records decode", () => {
    const message = query("P1.SipSteer.Test", "A");
    const q = parseQuery(message, WIRE_ZONE)!;
    const a = encodeRecords([{ name: `p1.${ZONE}`, type: "A", ttl: 5, data: "127.0.0.11" }]);
    const reply = { ...bareReply(RCODES.NOERROR, true), answer: a, answerCount: 1 };
    const packet = decode(assembleResponse(message, q, reply, 512, false));
    assert.equal(packet.id, 4242);
    assert.equal(packet.type, "response");
    assert.equal(packet.flag_aa, true);
    assert.equal(packet.questions?.[0]?.name, "P1.SipSteer.Test");
    assert.deepEqual(
      packet.answers?.map((r) => [r.name, r.type, dataOf<unknown>(r)]),
      [[`p1.${ZONE}`, "A", "127.0.0.11"]],
    );
  });

  // RFC 2181 §9: TC only when required data is missing; the additional section goes first.
  test("over the limit: additional records left out without TC, then TC and no records", () => {
    const message = query(`_sip._udp.${ZONE}`, "SRV");
    const q = parseQuery(message, WIRE_ZONE)!;
    const answer = Buffer.alloc(300, 0);
    const reply = {
      ...bareReply(RCODES.NOERROR, true),
      answer: soa,
      answerCount: 1,
      additional: answer,
      additionalCount: 1,
    };
    const fits = assembleResponse(message, q, reply, 1000, false);
    assert.equal(decode(fits).flag_tc, false);
    const noExtra = assembleResponse(message, q, reply, 200, false);
    assert.ok(noExtra.length <= 200);
    const p = decode(noExtra);
    assert.equal(p.flag_tc, false);
    assert.equal(p.answers?.length, 1);
    assert.equal(p.additionals?.length, 0);
    const cut = assembleResponse(message, q, reply, 60, false);
    const c = decode(cut);
    assert.equal(c.flag_tc, true);
    assert.equal(c.answers?.length, 0);
    assert.equal(c.questions?.length, 1);
  });

  test("TCP responses carry their length in two bytes first", () => {
    const message = query(ZONE, "SOA");
    const q = parseQuery(message, WIRE_ZONE)!;
    const reply = { ...bareReply(RCODES.NOERROR, true), answer: soa, answerCount: 1 };
    const framed = assembleResponse(message, q, reply, 65535, true);
    assert.equal(framed.readUInt16BE(0), framed.length - 2);
    assert.equal(decode(framed.subarray(2)).answers?.[0]?.type, "SOA");
  });
});

describe("DnsFront answers from the selector (fake clock, no sockets)", () => {
  test("SRV: the selector's choice first at priority 10, the rest by rank at 20, weights from spare", async () => {
    const parts = fleet();
    const f = front(parts);
    const packet = await ask(f, query(`_sip._udp.${ZONE}`, "SRV"));
    // All idle: p3 (the largest) is chosen; after that send the rank is p2, p1, p3.
    assert.equal(parts.selector.timesChosen("p3"), 1, "the SRV answer records a send");
    const srv = packet.answers!.map((r) => dataOf<Record<string, unknown>>(r));
    assert.deepEqual(
      srv.map((d) => [d.target, d.priority, d.port]),
      [
        [`p3.${ZONE}`, SRV_PRIORITY_CHOSEN, 5060],
        [`p2.${ZONE}`, SRV_PRIORITY_OTHERS, 5060],
        [`p1.${ZONE}`, SRV_PRIORITY_OTHERS, 5060],
      ],
    );
    // Spare 299 (one client sent), 200, 100 of 599.
    assert.deepEqual(
      srv.map((d) => d.weight),
      [50, 33, 17],
    );
    assert.equal(packet.flag_aa, true);
    const ttl = ttlOf(packet.answers![0]) ?? 0;
    assert.ok(ttl >= 1 && ttl <= 5, `TTL ${ttl}`);
    assert.deepEqual(
      packet.additionals!.map((r) => [r.name, r.type, dataOf<unknown>(r)]),
      [
        [`p3.${ZONE}`, "A", "127.0.0.13"],
        [`p3.${ZONE}`, "AAAA", "::1"],
        [`p2.${ZONE}`, "A", "127.0.0.12"],
        [`p2.${ZONE}`, "AAAA", "::1"],
        [`p1.${ZONE}`, "A", "127.0.0.11"],
        [`p1.${ZONE}`, "AAAA", "::1"],
      ],
    );
    parts.selector.dispose();
    parts.table.dispose();
  });

  // Issue 5 "Herd": the send correction counts DNS clients as it counts HTTP ones.
  test("600 SRV queries between two reports are spread by spare capacity", async () => {
    const parts = fleet();
    const f = front(parts);
    const first: Record<string, number> = {};
    for (let i = 0; i < 600; i++) {
      const p = await ask(f, query(`_sip._udp.${ZONE}`, "SRV"));
      const target = dataOf<{ target: string }>(p.answers![0]).target;
      first[target] = (first[target] ?? 0) + 1;
    }
    assert.ok(Math.abs(first[`p1.${ZONE}`]! - 100) <= 10, JSON.stringify(first));
    assert.ok(Math.abs(first[`p2.${ZONE}`]! - 200) <= 20, JSON.stringify(first));
    assert.ok(Math.abs(first[`p3.${ZONE}`]! - 300) <= 30, JSON.stringify(first));
    parts.selector.dispose();
    parts.table.dispose();
  });

  test("SRV weights: percent of the listed spare, at least 1 while any is left, 0 when full", () => {
    assert.equal(srvWeight(50, 100), 50);
    assert.equal(srvWeight(0.1, 1000), 1);
    assert.equal(srvWeight(0, 100), 0);
    assert.equal(srvWeight(0, 0), 0);
  });

  test("no eligible proxy for an SRV name: SERVFAIL; its other types NODATA", async () => {
    const parts = fleet();
    const f = front(parts);
    for (const id of ["p1", "p2", "p3"]) parts.table.drain(id);
    assert.equal(rcodeOf(await ask(f, query(`_sip._udp.${ZONE}`, "SRV"))), "SERVFAIL");
    const nodata = await ask(f, query(`_sip._udp.${ZONE}`, "A"));
    assert.equal(rcodeOf(nodata), "NOERROR");
    assert.equal(nodata.answers?.length, 0);
    assert.equal(nodata.authorities?.[0]?.type, "SOA");
    // NAPTR lists no transport then: the apex has no NAPTR records.
    const naptr = await ask(f, query(ZONE, "NAPTR"));
    assert.equal(naptr.answers?.length, 0);
    parts.selector.dispose();
    parts.table.dispose();
  });

  test("NAPTR: SIPS+D2T, SIP+D2T, SIP+D2U in RFC 3263's order, each to its SRV name", async () => {
    const parts = fleet();
    const f = front(parts);
    const packet = await ask(f, query(ZONE, "NAPTR"));
    assert.deepEqual(
      packet.answers!.map((r) => {
        const d = dataOf<Record<string, unknown>>(r);
        return [d.order, d.flags, d.services, d.replacement];
      }),
      [
        [50, "s", "SIPS+D2T", `_sips._tcp.${ZONE}`],
        [90, "s", "SIP+D2T", `_sip._tcp.${ZONE}`],
        [100, "s", "SIP+D2U", `_sip._udp.${ZONE}`],
      ],
    );
    assert.equal(parts.selector.chosenCounts().size, 0, "NAPTR records no send");
    parts.selector.dispose();
    parts.table.dispose();
  });

  test("SOA, NS with glue, names that exist without the type, and names that do not", async () => {
    const parts = fleet();
    const f = front(parts);
    const soa = await ask(f, query(ZONE, "SOA"));
    assert.equal(dataOf<{ mname: string }>(soa.answers![0]).mname, `ns.${ZONE}`);
    const ns = await ask(f, query(ZONE, "NS"));
    assert.equal(dataOf<string>(ns.answers![0]), `ns.${ZONE}`);
    assert.equal(dataOf<string>(ns.additionals![0]), "127.0.0.1");
    const glue = await ask(f, query(`ns.${ZONE}`, "A"));
    assert.equal(dataOf<string>(glue.answers![0]), "127.0.0.1");
    for (const [name, type] of [
      [`ns.${ZONE}`, "AAAA"],
      [`_udp.${ZONE}`, "A"],
      [`p1.${ZONE}`, "TXT"],
      [ZONE, "A"],
    ] as const) {
      const p = await ask(f, query(name, type));
      assert.equal(rcodeOf(p), "NOERROR", `${name} ${type}`);
      assert.equal(p.answers?.length, 0, `${name} ${type}`);
      // RFC 2308 §3: the negative TTL is the SOA's own, at most its minimum.
      assert.equal(ttlOf(p.authorities?.[0]), 5, `${name} ${type}`);
    }
    for (const name of [`nope.${ZONE}`, `a.p1.${ZONE}`, `x._sip._udp.${ZONE}`, `p_1.${ZONE}`]) {
      assert.equal(rcodeOf(await ask(f, query(name, "A"))), "NXDOMAIN", name);
    }
    const refused = await ask(f, query("example.com", "A"));
    assert.equal(rcodeOf(refused), "REFUSED");
    assert.equal(refused.flag_aa, false);
    assert.equal(rcodeOf(await ask(f, query(ZONE, "AXFR"))), "REFUSED");
    const chaos = encode({
      type: "query",
      id: 1,
      questions: [{ name: ZONE, type: "TXT", class: "CH" }],
    });
    assert.equal(rcodeOf(await ask(f, chaos)), "REFUSED");
    parts.selector.dispose();
    parts.table.dispose();
  });

  test("A and AAAA of a proxy's name come from the IP literals of its URIs", async () => {
    const parts = fleet();
    const f = front(parts);
    const a = await ask(f, query(`P2.${ZONE.toUpperCase()}`, "A"));
    assert.deepEqual(
      a.answers!.map((r) => dataOf<string>(r)),
      ["127.0.0.12"],
    );
    const aaaa = await ask(f, query(`p2.${ZONE}`, "AAAA"));
    assert.deepEqual(
      aaaa.answers!.map((r) => dataOf<string>(r)),
      ["::1"],
    );
    parts.selector.dispose();
    parts.table.dispose();
  });

  test("opcodes, OPT as a question, EDNS versions and damage get their codes", async () => {
    const parts = fleet();
    const f = front(parts);
    const status = query(ZONE, "SOA", { flags: 2 << 11 });
    assert.equal(rcodeOf(await ask(f, status)), "NOTIMP");
    assert.equal(rcodeOf(await ask(f, query(ZONE, "OPT"))), "FORMERR");
    const v1 = await ask(f, ednsQuery(ZONE, "SOA", 1232, 1));
    // BADVERS (16): 0 in the header, 1 in the OPT's extended rcode.
    const opt = v1.additionals!.find((r) => r.type === "OPT") as { extendedRcode: number };
    assert.equal(opt.extendedRcode, 1);
    const headerOnly = await ask(f, query(ZONE, "SOA").subarray(0, 12));
    assert.equal(rcodeOf(headerOnly), "FORMERR");
    assert.equal(headerOnly.id, 4242);
    assert.equal(f.answer(Buffer.from([1, 2, 3]), false), undefined);
    const counters = f.counters();
    assert.equal(counters.answered.NOTIMP, 1);
    assert.equal(counters.answered.FORMERR, 2);
    assert.equal(counters.answered.BADVERS, 1);
    assert.equal(counters.dropped, 1);
    parts.selector.dispose();
    parts.table.dispose();
  });

  // RFC 1035 §4.2.1 and RFC 6891 §6.2.5: 512 bytes without EDNS, the offered size with it.
  test("UDP size: many proxies' SRV over 512 bytes is cut without EDNS, whole with it", async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `proxy-with-a-long-name-${i}`);
    const { clock, table } = tableOnFakeClock({ proxies: ids });
    for (const [i, id] of ids.entries()) {
      table.ingest(report(id, { uris: { udp: `sip:127.0.1.${i + 1}:5060` } }), { via: "push" });
    }
    const selector = new Selector({ table, config: { maxAlternates: 11 } });
    const f = front({ clock, table, selector }, { maxSrvRecords: 12 });
    const classic = await f.answer(query(`_sip._udp.${ZONE}`, "SRV"), false);
    assert.ok(classic !== undefined && classic.length <= CLASSIC_UDP_BYTES);
    assert.equal(decode(classic).flag_tc, true);
    const big = await ask(f, ednsQuery(`_sip._udp.${ZONE}`, "SRV", 4096));
    assert.equal(big.flag_tc, false);
    assert.equal(big.answers?.length, 12);
    const tcp = await ask(f, query(`_sip._udp.${ZONE}`, "SRV"), true);
    assert.equal(tcp.answers?.length, 12);
    assert.equal(tcp.additionals?.length, 12);
    selector.dispose();
    table.dispose();
  });

  test("property: any bytes get no exception, and every answer decodes", () => {
    const parts = fleet();
    const f = front(parts);
    const good = query(`_sip._udp.${ZONE}`, "SRV");
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 600 }),
          // Damaged copies of a good query: one byte changed, or cut anywhere.
          fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })).map(([at, b]) => {
            const copy = new Uint8Array(good);
            copy[at] = b;
            return copy;
          }),
          fc.nat(good.length).map((n) => new Uint8Array(good.subarray(0, n))),
        ),
        (bytes) => {
          const out = f.answer(Buffer.from(bytes), false);
          if (out === undefined || out instanceof Promise) return;
          decode(out);
        },
      ),
      { numRuns: 2000 },
    );
    parts.selector.dispose();
    parts.table.dispose();
  });
});

/** Reads framed DNS messages off a TCP socket. */
function framedReader(socket: Socket): {
  next: () => Promise<DecodedPacket>;
  closed: Promise<void>;
} {
  let buffer = Buffer.alloc(0);
  const waiting: ((p: DecodedPacket) => void)[] = [];
  const ready: DecodedPacket[] = [];
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
      const n = buffer.readUInt16BE(0);
      const packet = decode(buffer.subarray(2, 2 + n));
      buffer = buffer.subarray(2 + n);
      const w = waiting.shift();
      if (w !== undefined) w(packet);
      else ready.push(packet);
    }
  });
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.on("error", () => {});
  return {
    next: () => {
      const p = ready.shift();
      return p !== undefined ? Promise.resolve(p) : new Promise((resolve) => waiting.push(resolve));
    },
    closed,
  };
}

function frame(message: Buffer): Buffer {
  const out = Buffer.alloc(2 + message.length);
  out.writeUInt16BE(message.length, 0);
  message.copy(out, 2);
  return out;
}

async function open(port: number): Promise<Socket> {
  const socket = connect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return socket;
}

describe("DnsFront over TCP (RFC 7766) on real sockets", () => {
  async function withTcpFront(
    over: Partial<DnsFrontOptions>,
    body: (f: DnsFront, port: number, clock: FakeClock) => Promise<void>,
  ): Promise<void> {
    const parts = fleet();
    const f = front(parts, {
      listen: [
        { protocol: "udp", address: "127.0.0.1", port: 0 },
        { protocol: "tcp", address: "127.0.0.1", port: 0 },
      ],
      ...over,
    });
    await f.start();
    try {
      const udp = f.listeners.find((l) => l.protocol === "udp")!;
      const tcp = f.listeners.find((l) => l.protocol === "tcp")!;
      // A client that got TC over UDP asks the same port over TCP.
      assert.equal(tcp.port, udp.port);
      await body(f, tcp.port, parts.clock);
    } finally {
      await f.stop();
      parts.selector.dispose();
      parts.table.dispose();
    }
    assert.deepEqual(await openHandles(), {});
  }

  test("messages split byte by byte and two pipelined in one write are all answered", async () => {
    await withTcpFront({}, async (_f, port) => {
      const socket = await open(port);
      const reader = framedReader(socket);
      const soa = frame(query(ZONE, "SOA"));
      for (const byte of soa) {
        socket.write(Buffer.from([byte]));
        await new Promise((r) => setImmediate(r));
      }
      assert.equal((await reader.next()).answers?.[0]?.type, "SOA");
      socket.write(
        Buffer.concat([frame(query(ZONE, "NS")), frame(query(`_sip._tcp.${ZONE}`, "SRV"))]),
      );
      const types = [
        (await reader.next()).answers?.[0]?.type,
        (await reader.next()).answers?.[0]?.type,
      ];
      assert.deepEqual(types.sort(), ["NS", "SRV"]);
      socket.end();
      await reader.closed;
    });
  });

  test("a length no query has closes the connection", async () => {
    await withTcpFront({}, async (_f, port) => {
      const socket = await open(port);
      const reader = framedReader(socket);
      const header = Buffer.alloc(2);
      header.writeUInt16BE(DNS_MAX_TCP_QUERY_BYTES + 1, 0);
      socket.write(header);
      await reader.closed;
    });
  });

  test("an idle connection is closed after tcpIdleMs (fake clock)", async () => {
    await withTcpFront({ tcpIdleMs: 1000 }, async (f, port, clock) => {
      const socket = await open(port);
      const reader = framedReader(socket);
      socket.write(frame(query(ZONE, "SOA")));
      await reader.next();
      clock.tick(999);
      assert.equal(socket.destroyed, false);
      clock.tick(1);
      await reader.closed;
      assert.equal(f.counters().tcpClosed, 1);
    });
  });

  test("connections over the cap are closed on arrival", async () => {
    await withTcpFront({ maxTcpConnections: 1 }, async (_f, port) => {
      const first = await open(port);
      const firstReader = framedReader(first);
      first.write(frame(query(ZONE, "SOA")));
      await firstReader.next();
      const second = await open(port);
      await framedReader(second).closed;
      first.write(frame(query(ZONE, "NS")));
      assert.equal((await firstReader.next()).answers?.[0]?.type, "NS");
      first.end();
      await firstReader.closed;
    });
  });

  test("a UDP port whose TCP twin another process holds: TCP listens on another free port", async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen({ host: "127.0.0.1", port: 0 }, r));
    const held = (holder.address() as AddressInfo).port;
    const parts = fleet();
    const f = front(parts, {
      listen: [
        { protocol: "udp", address: "127.0.0.1", port: held },
        { protocol: "tcp", address: "127.0.0.1", port: 0 },
      ],
    });
    try {
      await f.start();
      const tcp = f.listeners.find((l) => l.protocol === "tcp")!;
      assert.notEqual(tcp.port, held);
      const socket = await open(tcp.port);
      const reader = framedReader(socket);
      socket.write(frame(query(ZONE, "SOA")));
      assert.equal((await reader.next()).answers?.[0]?.type, "SOA");
      socket.end();
      await reader.closed;
    } finally {
      await f.stop();
      await new Promise((r) => holder.close(r));
      parts.selector.dispose();
      parts.table.dispose();
    }
    assert.deepEqual(await openHandles(), {});
  });
});
