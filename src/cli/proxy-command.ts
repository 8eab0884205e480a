import { readFileSync } from "node:fs";
import { pino } from "pino";
import { parse as parseYaml } from "yaml";
import { Proxy, ProxyCluster, parseProxyConfig, workerCount } from "../proxy/index.js";

export interface ProxyCommandOptions {
  readonly config: string;
  readonly json?: boolean;
  readonly logLevel?: string;
}

/** Reads a YAML or JSON config file; a bad file stops start-up naming it. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new RangeError(`--config: cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return parseYaml(text) as unknown;
  } catch (e) {
    throw new RangeError(`${file}: not YAML or JSON: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * `sipsteer proxy --config proxy.yaml`: runs one proxy until SIGTERM or SIGINT (drain, then
 * exit when the dialogs are over or drainTimeoutMs passed); SIGHUP re-reads TLS certificates.
 * With --json, prints one line when serving: its id, SIP listeners and HTTP URL.
 */
export async function runProxyCommand(options: ProxyCommandOptions): Promise<void> {
  const logger = pino({ level: options.logLevel ?? "info" }, pino.destination(2));
  const config = parseProxyConfig(readConfigFile(options.config));
  const proxy =
    workerCount(config) > 1
      ? new ProxyCluster(config, { logger, workerLogLevel: options.logLevel ?? "info" })
      : new Proxy(config, { logger });
  await proxy.start();
  const info = {
    proxy: proxy.config.id,
    pid: process.pid,
    sip: proxy.listeners,
    http: proxy.httpUrl,
    ...(proxy instanceof ProxyCluster ? { workers: proxy.workerPids } : {}),
  };
  if (options.json === true) process.stdout.write(`${JSON.stringify(info)}\n`);
  else logger.info(info, "proxy serving");

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: stopping now");
      void proxy.stop().then(() => process.exit(1));
      return;
    }
    stopping = true;
    logger.info({ signal, calls: proxy.calls }, "draining before exit");
    void proxy.drainAndStop().then(
      (left) => {
        if (left > 0) logger.warn({ calls: left }, "drain timeout: stopped with dialogs up");
        process.exit(0);
      },
      (e: unknown) => {
        logger.error({ err: e }, "stop failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGHUP", () => {
    proxy
      .reloadTlsCredentials()
      .catch((e: unknown) => logger.error({ err: e }, "TLS reload failed"));
  });
}
