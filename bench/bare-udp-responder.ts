// The floor for npm run bench:udp: a bare Node UDP responder that answers each request with
// 200 OK by copying five header lines, no parsing, no transaction. What Node's UDP path alone
// costs per request on this machine.
import { createSocket } from "node:dgram";

const port = Number(process.argv[2] ?? 5060);
const socket = createSocket("udp4");
const COPIED = ["\r\nVia:", "\r\nFrom:", "\r\nTo:", "\r\nCall-ID:", "\r\nCSeq:"];

socket.on("message", (bytes, rinfo) => {
  const text = bytes.toString("latin1");
  let reply = "SIP/2.0 200 OK";
  for (const name of COPIED) {
    const at = text.indexOf(name);
    if (at < 0) return;
    reply += text.slice(at, text.indexOf("\r\n", at + 2));
  }
  socket.send(
    Buffer.from(`${reply}\r\nContent-Length: 0\r\n\r\n`, "latin1"),
    rinfo.port,
    rinfo.address,
  );
});
socket.bind(port, "127.0.0.1", () => console.log(`ready ${port}`));
process.once("SIGTERM", () => socket.close(() => process.exit(0)));
