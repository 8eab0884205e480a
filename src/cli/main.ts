#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { runMonitorCommand } from "./monitor-command.js";
import { runParseCommand } from "./parse-command.js";
import { runProxyCommand } from "./proxy-command.js";
import { formatBuildStatus } from "./status.js";
import { stopWhenUpGoes } from "./up/parent-watch.js";
import { runUpCommand, type UpCommandOptions } from "./up/up-command.js";
import {
  DEFAULT_MONITOR_DNS_PORT,
  DEFAULT_MONITOR_HTTP_PORT,
  DEFAULT_MONITOR_SIP_PORT,
  DEFAULT_PROXY_ADDRESS_BASE,
  DEFAULT_PROXY_COUNT,
  DEFAULT_PROXY_HTTP_PORT,
  DEFAULT_PROXY_SIP_PORT,
  DEFAULT_PROXY_TLS_PORT,
  DEFAULT_PROXY_WS_PORT,
} from "./up/up-config.js";

stopWhenUpGoes();

const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

const program = new Command("sipsteer")
  .description(
    "A SIP proxy fleet with a load monitor that steers every client to the least-loaded proxy.",
  )
  .version(pkg.version);

program
  .command("parse")
  .description("parse raw SIP messages and show what sipsteer reads, or how it would answer")
  .argument("[files...]", "files holding one message each (a datagram); stdin when none")
  .option("--stream", "read each file as a TCP byte stream (Content-Length framing)")
  .option("--json", "print one JSON object per message")
  .action((files: string[], options: { stream?: boolean; json?: boolean }) => {
    process.exitCode = runParseCommand(files, options);
  });

program
  .command("proxy")
  .description("run a SIP proxy and registrar that reports its load to the monitor")
  .requiredOption("-c, --config <file>", "proxy configuration (YAML or JSON)")
  .option("--json", "print one JSON line with the bound addresses when serving")
  .option("--log-level <level>", "pino log level (logs go to stderr)", "info")
  .action(async (options: { config: string; json?: boolean; logLevel?: string }) => {
    try {
      await runProxyCommand(options);
    } catch (e) {
      console.error(`sipsteer proxy: ${(e as Error).message}`);
      process.exit(2);
    }
  });

program
  .command("monitor")
  .description("run the load monitor that steers clients to the least-loaded proxy")
  .requiredOption("-c, --config <file>", "monitor configuration (YAML or JSON)")
  .option("--json", "print one JSON line with the bound addresses when serving")
  .option("--log-level <level>", "pino log level (logs go to stderr)", "info")
  .action(async (options: { config: string; json?: boolean; logLevel?: string }) => {
    try {
      await runMonitorCommand(options);
    } catch (e) {
      console.error(`sipsteer monitor: ${(e as Error).message}`);
      process.exit(2);
    }
  });

// No defaults here: an option given overrides the config file, one left out does not.
program
  .command("up")
  .description(
    "run a monitor and N proxies on loopback, each its own process, with demo users (npm start)",
  )
  .option("-c, --config <file>", "YAML settings of up (the options below override them)")
  .option("--proxies <n>", `how many proxies (default ${DEFAULT_PROXY_COUNT})`)
  .option(
    "--data <dir>",
    "data folder (default $XDG_DATA_HOME/sipsteer or ~/.local/share/sipsteer)",
  )
  .option("--users <n>", "numbered users user0001 … beside alice, bob and carol (default 0)")
  .option("--domain <name>", "DNS zone, SIP domain and digest realm (default sipsteer.test)")
  .option("--http-port <port>", `monitor HTTP API (default ${DEFAULT_MONITOR_HTTP_PORT})`)
  .option("--dns-port <port>", `monitor DNS, UDP and TCP (default ${DEFAULT_MONITOR_DNS_PORT})`)
  .option(
    "--sip-port <port>",
    `monitor SIP redirect, UDP and TCP (default ${DEFAULT_MONITOR_SIP_PORT})`,
  )
  .option(
    "--address-base <ip>",
    `proxy n listens on this plus n (default ${DEFAULT_PROXY_ADDRESS_BASE})`,
  )
  .option(
    "--proxy-sip-port <port>",
    `proxies' SIP, UDP and TCP (default ${DEFAULT_PROXY_SIP_PORT})`,
  )
  .option(
    "--proxy-tls-port <port>",
    `proxies' SIP over TLS, with proxy.tls in the config (default ${DEFAULT_PROXY_TLS_PORT})`,
  )
  .option(
    "--proxy-ws-port <port>",
    `proxies' SIP over WebSocket (default ${DEFAULT_PROXY_WS_PORT})`,
  )
  .option("--proxy-http-port <port>", `proxies' HTTP API (default ${DEFAULT_PROXY_HTTP_PORT})`)
  .option("--json", "print one JSON line (DESIGN.md) once every proxy is eligible")
  .option("--log-level <level>", "log level of every process (logs go to DATA/logs) (default info)")
  .action(async (options: UpCommandOptions) => {
    process.exit(await runUpCommand(options));
  });

program.action(() => {
  program.outputHelp();
  console.log(`\nWhat is built so far:\n${formatBuildStatus()}`);
});

await program.parseAsync(process.argv);
