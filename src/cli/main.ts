#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { runMonitorCommand } from "./monitor-command.js";
import { runParseCommand } from "./parse-command.js";
import {
  runAnswerCommand,
  runCallCommand,
  type CallCommandOptions,
  type PhoneOptions,
} from "./phone-command.js";
import { runGatewayCommand } from "./gateway-command.js";
import { runProxyCommand } from "./proxy-command.js";
import { runRelaysCommand } from "./relays-command.js";
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
  DEFAULT_RELAY_BINARY,
  DEFAULT_RELAY_NG_PORT,
  DEFAULT_RELAY_RTP_PORT_BASE,
  DEFAULT_RELAY_RTP_PORTS_EACH,
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
  .command("gateway")
  .description(
    "run the access gateway that admits clients and forwards them to the least-loaded proxy",
  )
  .requiredOption("-c, --config <file>", "gateway configuration (YAML or JSON)")
  .option("--json", "print one JSON line with the bound addresses when serving")
  .option("--log-level <level>", "pino log level (logs go to stderr)", "info")
  .action(async (options: { config: string; json?: boolean; logLevel?: string }) => {
    try {
      await runGatewayCommand(options);
    } catch (e) {
      console.error(`sipsteer gateway: ${(e as Error).message}`);
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

// The media relays of `up` (rtpengine), under one keeper process: not a command of its own
// for users, hence hidden.
program
  .command("relays", { hidden: true })
  .description("run the rtpengine media relays a file lists (started by sipsteer up)")
  .requiredOption("-c, --config <file>", "relays configuration (YAML or JSON)")
  .option("--json", "print one JSON line with the relays once each answers a ping")
  .option("--log-level <level>", "pino log level (logs go to stderr)", "info")
  .action(async (options: { config: string; json?: boolean; logLevel?: string }) => {
    try {
      await runRelaysCommand(options);
    } catch (e) {
      console.error(`sipsteer relays: ${(e as Error).message}`);
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
  .option("--no-relays", "start no media relays (default: one rtpengine per proxy)")
  .option(
    "--relay-ng-port <port>",
    `relays' ng control, UDP on each proxy's address (default ${DEFAULT_RELAY_NG_PORT})`,
  )
  .option(
    "--relay-rtp-port-base <port>",
    `relay n's RTP ports start at this plus ${DEFAULT_RELAY_RTP_PORTS_EACH}·(n-1) (default ${DEFAULT_RELAY_RTP_PORT_BASE})`,
  )
  .option("--rtpengine <path>", `the rtpengine binary (default ${DEFAULT_RELAY_BINARY} on PATH)`)
  .option("--json", "print one JSON line (DESIGN.md) once every proxy is eligible")
  .option("--log-level <level>", "log level of every process (logs go to DATA/logs) (default info)")
  .action(
    async (options: Omit<UpCommandOptions, "relays"> & { relays?: boolean }, command: Command) => {
      // --no-relays makes commander default `relays` to true; only a given option may override
      // the config file.
      const relays = command.getOptionValueSource("relays") === "cli" ? "false" : undefined;
      process.exit(await runUpCommand({ ...options, relays }));
    },
  );

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** The options `call` and `answer` share. */
function phoneOptions(command: Command): Command {
  return command
    .requiredOption(
      "--monitor <address>",
      "where to ask for a proxy: http://HOST:PORT, dns:HOST:PORT/ZONE or sip:HOST:PORT (repeat to try several in turn)",
      collect,
    )
    .requiredOption("--user <name>", "user name (and digest username)")
    .requiredOption("--password <secret>", "digest password")
    .option("--domain <name>", "SIP domain and digest realm", "sipsteer.test")
    .option("--transport <udp|tcp>", "SIP transport to the proxy", "udp")
    .option("--address <ip>", "local address for SIP and RTP", "127.0.0.1")
    .option(
      "--rebalance",
      "at each registration refresh, move when the monitor ranks another proxy markedly (0.2) less loaded",
    )
    .option("--allow <cidr>", "send only to these CIDR blocks (repeat; default: anywhere)", collect)
    .option("--play <what>", "what to send: tone:HZ, silence or a WAV file (default silence)")
    .option("--record <file.wav>", "record what is heard to a WAV file")
    .option("--video [file.ivf]", "offer and accept VP8 video, sending this IVF file (looped)")
    .option("--record-video <file.ivf>", "record the VP8 video that arrives to an IVF file")
    .option("--json", "print events and the end-of-call report as JSON lines")
    .option("--log-level <level>", "pino log level (logs go to stderr)", "warn");
}

function phoneFailed(name: string, e: unknown): never {
  console.error(`sipsteer ${name}: ${(e as Error).message}`);
  process.exit(2);
}

function checkTransport(options: PhoneOptions): void {
  if (options.transport !== "udp" && options.transport !== "tcp") {
    throw new Error(`--transport ${String(options.transport)}: udp or tcp`);
  }
}

phoneOptions(
  program
    .command("call")
    .description(
      "ask the monitor for a proxy, register there, call TARGET (bob or sip:bob@domain) with audio, hang up after --duration",
    )
    .argument("<target>", "who to call: a user of the domain, or a SIP URI"),
)
  .option("--duration <seconds>", "seconds of media after the answer", "10")
  .action(async (target: string, raw: PhoneOptions & { duration: string }) => {
    const duration = Number(raw.duration);
    try {
      checkTransport(raw);
      if (!(duration > 0)) throw new Error(`--duration ${raw.duration}: a number of seconds > 0`);
      const options: CallCommandOptions = { ...raw, duration };
      process.exit(await runCallCommand(target, options));
    } catch (e) {
      phoneFailed("call", e);
    }
  });

phoneOptions(
  program
    .command("answer")
    .description("ask the monitor for a proxy, register there and answer every call, until Ctrl-C"),
).action(async (options: PhoneOptions) => {
  try {
    checkTransport(options);
    process.exit(await runAnswerCommand(options));
  } catch (e) {
    phoneFailed("answer", e);
  }
});

program.action(() => {
  program.outputHelp();
  console.log(`\nWhat is built so far:\n${formatBuildStatus()}`);
});

await program.parseAsync(process.argv);
