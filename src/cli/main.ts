#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { runMonitorCommand } from "./monitor-command.js";
import { runParseCommand } from "./parse-command.js";
import { runProxyCommand } from "./proxy-command.js";
import { formatBuildStatus } from "./status.js";

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

program.action(() => {
  program.outputHelp();
  console.log(`\nWhat is built so far:\n${formatBuildStatus()}`);
});

await program.parseAsync(process.argv);
