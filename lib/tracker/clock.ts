/**
 * The clock the tracker runtimes read and set timers on: `performance.now()` and the global timers by default, a
 * virtual clock in tests, so retries, time-outs and re-announces are driven explicitly instead of waited for.
 * @module
 */
import { clearTimer, setTimer, type TimerHandle } from "../timers.ts";

/** A timer handle, as {@linkcode Clock.setTimeout} returns it. */
export type TimerId = TimerHandle;

/** Monotonic time in ms and one-shot timers on the same time base. */
export interface Clock {
  /** Monotonic milliseconds; only differences are meaningful. */
  now(): number;
  /** Calls `fn` once, `ms` (at least 0) after now. */
  setTimeout(fn: () => void, ms: number): TimerId;
  /** Cancels a timer; unknown or undefined handles are ignored. */
  clearTimeout(id: TimerId | undefined): void;
}

/**
 * The real clock: `performance.now()` and the timers of `lib/timers.ts`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const t0 = realClock.now();
 * realClock.clearTimeout(realClock.setTimeout(() => {}, 10));
 * eq(realClock.now() >= t0, true);
 * ```
 */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimer(fn, ms),
  clearTimeout: (id) => clearTimer(id),
};
