import { pino, type Logger } from "pino";

export type { Logger };

/** Library code logs nothing unless a logger is passed in. */
export const silentLogger: Logger = pino({ level: "silent" });
