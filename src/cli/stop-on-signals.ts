import type { Logger } from "pino";

/**
 * SIGTERM and SIGINT run `stop` once, then exit 0 (1 when it fails). A second signal while
 * stopping is ignored, or exits 1 at once when `secondSignalExits` is set. The caller sets
 * `stopping` when it stops for a reason of its own, so that a signal then changes nothing.
 */
export function stopOnSignals(
  logger: Logger,
  stop: () => Promise<unknown>,
  options: { readonly secondSignalExits?: boolean } = {},
): { stopping: boolean } {
  const state = { stopping: false };
  const onSignal = (signal: string): void => {
    if (state.stopping) {
      if (options.secondSignalExits !== true) return;
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    state.stopping = true;
    logger.info({ signal }, "stopping");
    stop().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error({ err: e }, "stop failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  return state;
}
