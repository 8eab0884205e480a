import { pino } from "pino";
import { Gateway, parseGatewayConfig } from "../gateway/index.js";
import { readConfigFile } from "./proxy-command.js";
import { stopOnSignals } from "./stop-on-signals.js";

export interface GatewayCommandOptions {
  readonly config: string;
  readonly json?: boolean;
  readonly logLevel?: string;
}

/**
 * `sipsteer gateway --config gateway.yaml`: runs the access gateway until SIGTERM or SIGINT
 * (new registrations and calls refused, the dialogs under way let finish for drainTimeoutMs,
 * then exit; a second signal exits at once); SIGHUP re-reads TLS certificates. With --json,
 * prints one line when serving: its id, SIP listeners and HTTP URL.
 */
export async function runGatewayCommand(options: GatewayCommandOptions): Promise<void> {
  const logger = pino({ level: options.logLevel ?? "info" }, pino.destination(2));
  const gateway = new Gateway(parseGatewayConfig(readConfigFile(options.config)), { logger });
  await gateway.start();
  const info = {
    gateway: gateway.config.id,
    pid: process.pid,
    sip: gateway.listeners,
    http: gateway.httpUrl,
  };
  if (options.json === true) process.stdout.write(`${JSON.stringify(info)}\n`);
  else logger.info(info, "gateway serving");
  stopOnSignals(
    logger,
    async () => {
      const left = await gateway.drainAndStop();
      if (left > 0) logger.warn({ calls: left }, "drain timeout: stopped with dialogs up");
    },
    { secondSignalExits: true },
  );
  process.on("SIGHUP", () => {
    gateway
      .reloadTlsCredentials()
      .catch((e: unknown) => logger.error({ err: e }, "TLS reload failed"));
  });
}
