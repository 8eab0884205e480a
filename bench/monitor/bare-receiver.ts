// The reference of the report-ingest part of npm run bench:monitor: what any Node 20 server
// pays to receive the same pushes, doing nothing with them. HTTP: node:http reads the body of
// every POST and answers 204; UDP: a socket takes each datagram and drops it. No signature
// check, no parsing, no table. Usage: node bare-receiver.js. Prints {"http": port, "udp": port}
// on stdout once listening; exits on SIGTERM.
import { createSocket } from "node:dgram";
import { createServer } from "node:http";

const http = createServer((req, res) => {
  req.on("data", () => {});
  req.on("end", () => res.writeHead(204).end());
});
http.keepAliveTimeout = 30_000;
const udp = createSocket("udp4");
udp.on("message", () => {});
await new Promise<void>((r) => http.listen({ host: "127.0.0.1", port: 0 }, r));
await new Promise<void>((r) => udp.bind({ address: "127.0.0.1", port: 0 }, r));
const httpBound = http.address();
process.stdout.write(
  `${JSON.stringify({
    http: typeof httpBound === "object" ? httpBound?.port : 0,
    udp: udp.address().port,
  })}\n`,
);
process.on("SIGTERM", () => {
  udp.close();
  http.close(() => process.exit(0));
  http.closeAllConnections();
});
