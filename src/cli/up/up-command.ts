import { dirname, resolve } from "node:path";
import { readConfigFile } from "../proxy-command.js";
import { defaultDataDir, prepareDataFolder, type PreparedData } from "./data-folder.js";
import { findExecutable } from "./executable.js";
import {
  clashingPorts,
  planUp,
  plannedPorts,
  portName,
  withSharedPortsChosen,
  type UpPlan,
} from "./plan.js";
import { firstUnavailablePort, freePortOnAll } from "./ports.js";
import { relayMissingMessage } from "./relay-keeper.js";
import { ChildFailedError, StopRequestedError, Supervisor } from "./supervisor.js";
import {
  UP_OPTION_PATHS,
  parseUpConfig,
  resolvePathsFrom,
  type UpConfig,
  type UpOptionName,
  type UpOptionValues,
} from "./up-config.js";
import { formatSummary } from "./up-output.js";

export interface UpCommandOptions extends UpOptionValues {
  /** A YAML config file of up's settings; the options override it. */
  readonly config?: string;
  readonly json?: boolean;
}

/** Exit codes: 0 stopped as asked; 1 a child failed; 2 a bad setting or a port not available. */
export const EXIT_STOPPED = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Up cannot start as asked: the message names the option, field or port (exit 2). */
class UsageError extends Error {
  override readonly name = "UsageError";
}

function say(line: string): void {
  process.stderr.write(`sipsteer up: ${line}\n`);
}

interface Settings {
  readonly config: Readonly<UpConfig>;
  readonly plan: UpPlan;
  /** The rtpengine binary found, when the plan has relays. */
  readonly relayBinary: string | undefined;
  /** Why the plan has no relays, when it has none. */
  readonly noRelays: string | undefined;
  /** The binary is missing: up starts without relays and says so. */
  readonly relaysMissing: boolean;
}

/**
 * The settings (file, then options over it) and the plan with its free ports chosen, without
 * relays when they are turned off or the rtpengine binary is not there.
 */
async function settingsOf(options: UpCommandOptions): Promise<Settings> {
  try {
    const file =
      options.config === undefined
        ? undefined
        : resolvePathsFrom(readConfigFile(options.config), dirname(resolve(options.config)));
    const values: UpOptionValues = Object.fromEntries(
      Object.keys(UP_OPTION_PATHS).map((name) => [name, options[name as UpOptionName]]),
    );
    const config = parseUpConfig({ file, fileName: options.config, options: values });
    let plan = planUp(config);
    const relayBinary = config.relays ? findExecutable(config.relay.binary) : undefined;
    const relaysMissing = config.relays && relayBinary === undefined;
    if (relaysMissing) plan = { ...plan, relays: [] };
    return {
      config,
      plan: await withSharedPortsChosen(plan, freePortOnAll),
      relayBinary,
      noRelays: !config.relays
        ? "turned off (relays: false, --no-relays)"
        : relaysMissing
          ? relayMissingMessage(config.relay.binary)
          : undefined,
      relaysMissing,
    };
  } catch (e) {
    throw new UsageError((e as Error).message, { cause: e });
  }
}

/** Every socket of the plan can be bound now, and no two of them are the same. */
async function checkPorts(plan: UpPlan): Promise<void> {
  const ports = plannedPorts(plan);
  const clash = clashingPorts(ports);
  if (clash !== undefined) {
    throw new UsageError(
      `${portName(clash[0])} is planned twice: for ${clash[0].role} and ${clash[1].role}`,
    );
  }
  const unavailable = await firstUnavailablePort(ports);
  if (unavailable !== undefined) throw new UsageError(unavailable);
}

function dataOf(config: Readonly<UpConfig>): PreparedData {
  try {
    return prepareDataFolder({
      dir: config.data ?? defaultDataDir(),
      domain: config.domain,
      numberedUsers: config.users,
    });
  } catch (e) {
    throw new UsageError((e as Error).message, { cause: e });
  }
}

/**
 * `sipsteer up`: checks every planned port, prepares the data folder, starts the monitor and
 * the proxies as child processes, prints where everything listens (or, with --json, one line)
 * once every proxy is eligible, and runs until SIGINT or SIGTERM, which stop every child (a
 * second signal kills them). Resolves with the exit code.
 */
export async function runUpCommand(options: UpCommandOptions): Promise<number> {
  let supervisor: Supervisor | undefined;
  let signalled = false;
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const firstSignal = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => {
      if (signalled) {
        say(`second ${signal}: killing every child now`);
        supervisor?.kill();
        return;
      }
      signalled = true;
      resolve(signal);
    };
  });
  const handler = (signal: NodeJS.Signals) => onSignal(signal);
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  try {
    const { config, plan, relayBinary, noRelays, relaysMissing } = await settingsOf(options);
    await checkPorts(plan);
    // `npm start` must work without rtpengine: up starts, without relays, and says so once.
    if (relaysMissing) say(`starting without media relays: ${noRelays}`);
    if (signalled) return EXIT_STOPPED;
    const data = dataOf(config);

    const sup = new Supervisor({
      config,
      plan,
      data,
      echo: (line) => process.stderr.write(`${line}\n`),
      ...(relayBinary === undefined ? {} : { relayBinary }),
    });
    supervisor = sup;
    const stopAll = async (): Promise<void> => {
      const killed = await sup.stop();
      if (killed.length > 0) say(`killed after ${config.stopTimeoutMs} ms: ${killed.join(", ")}`);
    };

    try {
      const started = sup.start();
      const first = await Promise.race([started, firstSignal]);
      if (typeof first === "string") {
        await stopAll();
        await started.catch(() => undefined);
        return EXIT_STOPPED;
      }
      if (options.json === true) process.stdout.write(`${JSON.stringify(first)}\n`);
      else process.stdout.write(formatSummary(first, noRelays === undefined ? {} : { noRelays }));
    } catch (e) {
      await stopAll();
      if (e instanceof StopRequestedError) return EXIT_STOPPED;
      say(e instanceof ChildFailedError ? e.message : `could not start: ${(e as Error).message}`);
      return EXIT_FAILED;
    }

    const outcome = await Promise.race([firstSignal, sup.failed]);
    await stopAll();
    if (outcome instanceof ChildFailedError) {
      say(`${outcome.message}\nsipsteer up: stopped every other process`);
      return EXIT_FAILED;
    }
    return EXIT_STOPPED;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    say(e.message);
    return EXIT_USAGE;
  } finally {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  }
}
