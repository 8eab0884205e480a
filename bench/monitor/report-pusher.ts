// The load process of the report-ingest part of npm run bench:monitor: N synthetic proxies,
// each pushing a signed load report (DESIGN.md "Load report") every `interval` ms, spread
// evenly over the interval, for `seconds`. Over HTTP each proxy keeps one keep-alive
// connection (POST /v1/reports, `Sipsteer-Signature: keyid=…, sig=…`), as a proxy's fetch
// does; over UDP each sends signed datagrams (`<keyid> <hex>\n<body>`) from a socket of its own.
//
// Usage: node report-pusher.js <http://…/v1/reports | udp://host:port> <proxies> <interval ms>
//   <warm-up s> <seconds>
// Prints {"phase":"steady"} when the warm-up is over, {"phase":"end"} when it stops pushing,
// then {"phase":"done", sent, accepted, refused, errors} once the last answers are in, and exits.
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { Agent, request } from "node:http";
import {
  LOAD_REPORT_VERSION,
  SIGNATURE_HEADER,
  signatureHeader,
  signedDatagram,
  type LoadReport,
} from "../../src/contracts/index.js";
import { KEY } from "./harness.js";

const [target = "", countArg = "100", intervalArg = "200", warmupArg = "1", secondsArg = "10"] =
  process.argv.slice(2);
const COUNT = Number(countArg);
const INTERVAL_MS = Number(intervalArg);
const url = new URL(target);
const udp = url.protocol === "udp:";

let sent = 0;
let accepted = 0;
let refused = 0;
let errors = 0;

class SyntheticProxy {
  readonly id: string;
  readonly boot = randomBytes(8).toString("hex");
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 1 });
  readonly #socket: Socket | undefined;
  readonly #sipPort: number;
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(index: number) {
    this.id = `load-p${String(index + 1).padStart(3, "0")}`;
    this.#sipPort = 20_000 + index;
    this.#socket = udp ? createSocket("udp4") : undefined;
  }

  start(offsetMs: number): void {
    const tick = () => {
      this.push();
      this.#timer = setTimeout(tick, INTERVAL_MS);
    };
    this.#timer = setTimeout(tick, offsetMs);
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  close(): void {
    this.#agent.destroy();
    this.#socket?.close();
  }

  report(): LoadReport {
    const calls = Math.floor(Math.random() * 50);
    return {
      v: LOAD_REPORT_VERSION,
      proxy: this.id,
      boot: this.boot,
      seq: this.#seq++,
      at: Date.now(),
      interval: INTERVAL_MS,
      state: "active",
      calls,
      registrations: 100 + calls,
      transactions: calls * 2,
      media: 0,
      cps: Math.round(Math.random() * 5000) / 1000,
      cpu: Math.round(Math.random() * 200) / 1000,
      elu: Math.round(Math.random() * 200) / 1000,
      store: "ok",
      capacity: { calls: 1000, media: 0 },
      uris: {
        udp: `sip:127.0.0.1:${this.#sipPort}`,
        tcp: `sip:127.0.0.1:${this.#sipPort};transport=tcp`,
      },
    };
  }

  push(): void {
    const body = Buffer.from(JSON.stringify(this.report()));
    sent++;
    if (this.#socket !== undefined) {
      this.#socket.send(signedDatagram(body, KEY), Number(url.port), url.hostname, (e) => {
        if (e) errors++;
      });
      return;
    }
    const req = request(
      url,
      {
        method: "POST",
        agent: this.#agent,
        headers: {
          "content-type": "application/json",
          "content-length": body.length,
          [SIGNATURE_HEADER]: signatureHeader(body, KEY),
        },
      },
      (res) => {
        if (res.statusCode === 204) accepted++;
        else refused++;
        res.resume();
      },
    );
    req.on("error", () => errors++);
    req.end(body);
  }
}

const proxies = Array.from({ length: COUNT }, (_, i) => new SyntheticProxy(i));
proxies.forEach((p, i) => p.start((i * INTERVAL_MS) / COUNT));
await new Promise((r) => setTimeout(r, Number(warmupArg) * 1000));
process.stdout.write(`${JSON.stringify({ phase: "steady", sent })}\n`);
const sentBefore = sent;
await new Promise((r) => setTimeout(r, Number(secondsArg) * 1000));
for (const p of proxies) p.stop();
process.stdout.write(`${JSON.stringify({ phase: "end", sent })}\n`);
// Let the last answers come back.
await new Promise((r) => setTimeout(r, 300));
for (const p of proxies) p.close();
process.stdout.write(
  `${JSON.stringify({ phase: "done", sent, steadySent: sent - sentBefore, accepted, refused, errors })}\n`,
);
process.exit(0);
