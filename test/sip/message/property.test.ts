// Property tests (fast-check) of the codec: generated messages round-trip, damaged messages
// give a message or a typed error and never hang, and the stream framer gives the same result
// however the bytes are cut.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import {
  SipParseError,
  SipRequest,
  StreamFramer,
  parseDatagram,
  type FramedItem,
} from "../../../src/sip/index.js";
import { fixturePath } from "../../helpers/paths.js";
import { mutate, mutation, nameAddrText, requestMessage, sipUriText } from "./arbitraries.js";
import { parseNameAddr, parseUri } from "../../../src/sip/index.js";
import { isValidHostname } from "../../../src/sip/message/host.js";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const LIMITS = { maxUriBytes: 2048, maxParams: 64 };

describe("codec properties (fast-check)", { concurrency: false }, () => {
  test(`generated requests round-trip byte for byte and field for field (seed ${SEED})`, () => {
    fc.assert(
      fc.property(requestMessage, (generated) => {
        const m = parseDatagram(generated.bytes);
        assert.ok(m instanceof SipRequest);
        assert.ok(m.toBuffer().equals(generated.bytes));
        assert.equal(m.callId, generated.callId);
        assert.ok(m.body.equals(generated.body));
        for (const [name, value] of generated.extensions) {
          assert.ok(m.getHeaders(name).includes(value), `${name}: ${value}`);
        }
        // And after a proxy's edits, the result parses to the same edits.
        m.prependHeader("Via", "SIP/2.0/UDP 127.0.0.11;branch=z9hG4bKp");
        m.setHeader("Max-Forwards", String(Math.max(0, m.maxForwards! - 1)));
        const again = parseDatagram(m.toBuffer());
        assert.ok(again instanceof SipRequest);
        assert.equal(again.vias.length, 2);
        assert.ok(again.body.equals(generated.body));
      }),
      { numRuns: 1500, seed: SEED },
    );
  });

  test("URIs and name-addrs print back to what parses the same", () => {
    fc.assert(
      fc.property(sipUriText, (text) => {
        const uri = parseUri(text, LIMITS);
        assert.equal(uri.toString(), text);
        assert.deepEqual(parseUri(uri.toString(), LIMITS), uri);
      }),
      { numRuns: 2000, seed: SEED },
    );
    fc.assert(
      fc.property(nameAddrText, (text) => {
        const na = parseNameAddr(text, LIMITS);
        const again = parseNameAddr(na.toString(), LIMITS);
        assert.equal(again.displayName, na.displayName);
        assert.equal(again.uri.toString(), na.uri.toString());
        assert.equal(again.params.toString(), na.params.toString());
      }),
      { numRuns: 2000, seed: SEED },
    );
  });

  test("host validation agrees with a plain reading of the grammar", () => {
    const reference = (h: string): boolean => {
      if (h.length === 0 || h.length > 255) return false;
      if (/^[0-9.]+$/.test(h)) {
        // RFC 3261: IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT (≤ 255)
        const octets = h.split(".");
        return octets.length === 4 && octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255);
      }
      const labels = (h.endsWith(".") ? h.slice(0, -1) : h).split(".");
      return labels.every(
        (l) =>
          l.length >= 1 &&
          l.length <= 63 &&
          /^[A-Za-z0-9_-]+$/.test(l) &&
          !l.startsWith("-") &&
          !l.endsWith("-"),
      );
    };
    const hostChars = fc.constantFrom(..."0123456789.-_aZ".split(""));
    fc.assert(
      fc.property(fc.string({ unit: hostChars, maxLength: 20 }), (h) => {
        assert.equal(isValidHostname(h), reference(h), JSON.stringify(h));
      }),
      { numRuns: 20000, seed: SEED },
    );
  });

  test("mutated messages give a message or a typed error, never another exception or a hang", async () => {
    const worker = new Worker(new URL("./mutation-fuzz.js", import.meta.url), {
      workerData: { fixtureDir: fixturePath("rfc4475"), numRuns: 20000, seed: SEED },
    });
    try {
      const result = await new Promise<{ ok: boolean; error?: string }>((resolve, reject) => {
        // A generous bound: the run takes seconds; only an endless loop reaches this.
        const timer = setTimeout(() => reject(new Error("the codec hung on some input")), 120_000);
        worker.once("message", (m: { ok: boolean; error?: string }) => {
          clearTimeout(timer);
          resolve(m);
        });
        worker.once("error", (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
      assert.ok(result.ok, result.error);
    } finally {
      await worker.terminate();
    }
  });

  test("the stream framer gives the same items fed whole or one byte at a time", () => {
    const streamOf = fc.array(
      fc.tuple(requestMessage, fc.option(fc.array(mutation, { maxLength: 2 }), { nil: undefined })),
      { minLength: 1, maxLength: 3 },
    );
    const summary = (items: FramedItem[]) =>
      items.map((i) =>
        i.kind === "message"
          ? `message ${i.message.toBuffer().toString("latin1")}`
          : i.kind === "error"
            ? `error ${i.error.code} ${String(i.error.fatal)}`
            : i.kind,
      );
    fc.assert(
      fc.property(streamOf, fc.integer({ min: 1, max: 64 }), (parts, chunk) => {
        const stream = Buffer.concat(
          parts.map(([m, muts]) => (muts === undefined ? m.bytes : mutate(m.bytes, muts))),
        );
        const whole = summary(new StreamFramer().push(stream));
        const byteFramer = new StreamFramer();
        const bytewise: FramedItem[] = [];
        for (let i = 0; i < stream.length; i++)
          bytewise.push(...byteFramer.push(stream.subarray(i, i + 1)));
        assert.deepEqual(summary(bytewise), whole);
        const chunkFramer = new StreamFramer();
        const chunked: FramedItem[] = [];
        for (let i = 0; i < stream.length; i += chunk)
          chunked.push(...chunkFramer.push(stream.subarray(i, i + chunk)));
        assert.deepEqual(summary(chunked), whole);
      }),
      { numRuns: 300, seed: SEED },
    );
  });

  test("each typed error carries a known code", () => {
    fc.assert(
      fc.property(requestMessage, fc.array(mutation, { minLength: 1, maxLength: 3 }), (m, muts) => {
        try {
          parseDatagram(mutate(m.bytes, muts));
        } catch (e) {
          assert.ok(e instanceof SipParseError);
          assert.match(e.code, /^SIP_ERR_/);
          assert.ok(e.status === undefined || (e.status >= 400 && e.status <= 599));
        }
      }),
      { numRuns: 2000, seed: SEED },
    );
  });
});
