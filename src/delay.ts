/**
 * The one abortable timer of pq: waits any number of milliseconds, ends early
 * when a signal aborts, and leaves no timer or listener behind.
 *
 * @module
 */

/**
 * The longest delay a timer takes (2^31 - 1 ms, about 24.8 days): runtimes
 * fire a longer `setTimeout` after 1 ms instead, which once made getters poll
 * in a busy loop while a job was scheduled further ahead
 * (tests/bad_input_test.ts). Longer delays are waited for in steps.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Waits `ms` milliseconds, or less if `signal` aborts.
 *
 * @param ms How long; negative and NaN count as 0, and any length works.
 * @param signal Ends the wait early.
 * @returns True when the time passed, false when the signal aborted first
 * (also when it was aborted already).
 */
export function delay(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let left = Number.isNaN(ms) ? 0 : Math.max(0, ms);
    const done = (elapsed: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(elapsed);
    };
    const onAbort = () => done(false);
    const step = () => {
      const now = Math.min(left, MAX_TIMER_MS);
      left -= now;
      timer = setTimeout(() => (left > 0 ? step() : done(true)), now);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    step();
  });
}
