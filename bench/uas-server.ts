// The sipsteer side of npm run bench:udp, in its own process: the small UAS of the tests
// (transport → parse → server transaction → 200 OK) on a UDP port, until SIGTERM.
import { SmallUas } from "../test/helpers/small-uas.js";

const port = Number(process.argv[2] ?? 5060);
const uas = new SmallUas({ listen: [{ protocol: "udp", address: "127.0.0.1", port }] });
await uas.start();
console.log(`ready ${uas.port("udp")}`);
process.once("SIGTERM", () => {
  void uas.stop().then(() => process.exit(0));
});
