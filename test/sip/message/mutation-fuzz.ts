// The mutation properties, run in a worker thread by property.test.ts so that a hang (an
// endless loop on some input) fails the test instead of stalling the suite.
import { readFileSync, readdirSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import fc from "fast-check";
import {
  SipParseError,
  StreamFramer,
  parseDatagram,
  type SipMessage,
} from "../../../src/sip/index.js";
import { mutate, mutation, requestMessage } from "./arbitraries.js";

const { fixtureDir, numRuns, seed } = workerData as {
  fixtureDir: string;
  numRuns: number;
  seed: number;
};

const fixtures = readdirSync(fixtureDir)
  .filter((f) => f.endsWith(".dat"))
  .map((f) => readFileSync(`${fixtureDir}/${f}`));

/** Every lazy accessor: each must give a value or a SipParseError, nothing else. */
function readEverything(m: SipMessage): void {
  const reads: (() => unknown)[] = [
    () => m.vias,
    () => m.topVia,
    () => m.from,
    () => m.to,
    () => m.callId,
    () => m.cseq,
    () => m.maxForwards,
    () => m.contentLength,
    () => m.expires,
    () => m.contentType,
    () => m.contacts,
    () => m.contactWildcard,
    () => m.routes,
    () => m.recordRoutes,
    () => m.paths,
    () => m.supported,
    () => m.require,
    () => m.proxyRequire,
    () => m.unsupported,
    () => m.allow,
    () => m.authorizations,
    () => m.proxyAuthorizations,
    () => m.wwwAuthenticates,
    () => m.proxyAuthenticates,
    () => m.date,
    () => m.body,
    () => (m.type === "request" ? m.uri.toString() : m.reason),
    () => m.fields.map((f) => m.getHeader(f.name)),
  ];
  for (const read of reads) {
    try {
      read();
    } catch (e) {
      if (!(e instanceof SipParseError)) throw e;
    }
  }
}

function parseOrTypedError(bytes: Buffer): SipMessage | null | undefined {
  try {
    return parseDatagram(bytes);
  } catch (e) {
    if (e instanceof SipParseError) return undefined;
    throw e;
  }
}

const source = fc.oneof(
  fc.constantFrom(...fixtures),
  requestMessage.map((m) => m.bytes),
);

try {
  // Random mutations of valid messages give a message, a typed error or a keep-alive,
  // never another exception; a message that parses serializes to bytes that parse to the
  // same bytes again.
  fc.assert(
    fc.property(source, fc.array(mutation, { minLength: 1, maxLength: 4 }), (bytes, muts) => {
      const damaged = mutate(bytes, muts);
      const message = parseOrTypedError(damaged);
      if (message) {
        readEverything(message);
        const out = message.toBuffer();
        const again = parseDatagram(out);
        if (!again || !again.toBuffer().equals(out)) throw new Error("serialize is not stable");
      }
      const framer = new StreamFramer();
      for (const item of framer.push(damaged)) {
        if (item.kind === "message") readEverything(item.message);
      }
    }),
    { numRuns, seed },
  );
  parentPort!.postMessage({ ok: true });
} catch (e) {
  parentPort!.postMessage({
    ok: false,
    error: e instanceof Error ? (e.stack ?? e.message) : String(e),
  });
}
