import { pino } from "pino";
import { readConfigFile } from "./proxy-command.js";
import { stopOnSignals } from "./stop-on-signals.js";
import { RelayKeeper, parseRelaysConfig, type KeptRelay } from "./up/relay-keeper.js";

export interface RelaysCommandOptions {
  readonly config: string;
  readonly json?: boolean;
  readonly logLevel?: string;
}

/**
 * `sipsteer relays -c relays.yaml` (started by `sipsteer up`): runs the rtpengines the file
 * lists until SIGTERM or SIGINT, then stops them and exits 0. With --json, prints one line
 * once every relay answers a ping: `{"relays":[{"id","ng","rtp":{"min","max"},"pid"}],"pid"}`.
 * A relay that cannot start, or stops unasked, stops the others; exit 1.
 */
export async function runRelaysCommand(options: RelaysCommandOptions): Promise<void> {
  const logger = pino({ level: options.logLevel ?? "info" }, pino.destination(2));
  const keeper = new RelayKeeper(parseRelaysConfig(readConfigFile(options.config)), { logger });

  const signals = stopOnSignals(logger, () => keeper.stop());

  let relays: KeptRelay[];
  try {
    relays = await keeper.start();
  } catch (e) {
    // A signal during start: stop() exits.
    if (signals.stopping) return;
    logger.error((e as Error).message);
    process.exit(1);
  }
  const info = { relays, pid: process.pid };
  if (options.json === true) process.stdout.write(`${JSON.stringify(info)}\n`);
  else logger.info(info, "relays serving");

  void keeper.failed.then(async (e) => {
    if (signals.stopping) return;
    signals.stopping = true;
    logger.error(e.message);
    await keeper.stop();
    process.exit(1);
  });
}
