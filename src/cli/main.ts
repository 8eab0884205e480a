#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { runParseCommand } from "./parse-command.js";
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

program.action(() => {
  program.outputHelp();
  console.log(`\nWhat is built so far:\n${formatBuildStatus()}`);
});

await program.parseAsync(process.argv);
