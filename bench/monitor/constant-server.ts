// The reference of the HTTP part of npm run bench:monitor: a bare fastify route that answers
// GET /v1/select with a constant (a real select answer taken from the monitor, so that both
// send the same bytes), no logger, nothing else. Usage: node constant-server.js '<json>'.
// Prints its port on stdout once listening; exits on SIGTERM.
import Fastify from "fastify";

const answer = JSON.parse(process.argv[2] ?? "{}") as Record<string, unknown>;
const app = Fastify();
app.get("/v1/select", async () => answer);
await app.listen({ host: "127.0.0.1", port: 0 });
const bound = app.server.address();
process.stdout.write(`${JSON.stringify({ port: typeof bound === "object" ? bound?.port : 0 })}\n`);
process.on("SIGTERM", () => void app.close().then(() => process.exit(0)));
