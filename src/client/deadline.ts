import type { Clock } from "../sip/index.js";

/**
 * `work` bounded by `ms` on `clock`: rejects with `onTimeout()` when it has not settled by
 * then (what `work` holds is the caller's to release, through `cleanup`).
 */
export function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  clock: Clock,
  onTimeout: () => Error,
  cleanup: () => void = () => undefined,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimeout(() => {
      cleanup();
      reject(onTimeout());
    }, ms);
    work.then(
      (value) => {
        clock.clearTimeout(timer);
        resolve(value);
      },
      (e: unknown) => {
        clock.clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
