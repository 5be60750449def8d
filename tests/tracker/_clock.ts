/**
 * A virtual clock for the tracker runtimes' tests, and the two waits such tests need.
 * @module
 */
import type { Clock, TimerId } from "../../lib/tracker/clock.ts";

/** Lets everything already runnable run (promise callbacks, IO completions that arrived): one event-loop turn. */
export function tick(): Promise<void> {
  // a zero-delay timer is a yield to the event loop, not a wait for time to pass
  return new Promise((res) => setTimeout(res, 0));
}

/** How long {@linkcode guard} lets a test run before failing it: a broken test fails instead of hanging. */
const GUARD_MS = 10_000;

/**
 * `p`, or a rejection if it has not settled within {@linkcode GUARD_MS} of wall-clock time. Only a broken test ever
 * reaches that time; a passing one never waits on it (its time is virtual).
 */
export async function guard<T>(p: Promise<T>, what = "the awaited step"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`${what} did not happen (gave up after ${GUARD_MS} ms)`)), GUARD_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `p` has settled yet, after one event-loop turn. */
export async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => done = true, () => done = true);
  await tick();
  return done;
}

/**
 * Time that moves only when the test says so. A timer fires when time reaches it, earliest first (ties in the order
 * they were set); one set at or before the current time fires right away (on a microtask), as a real timer due now
 * would.
 */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<TimerId, { readonly at: number; readonly fn: () => void }>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = ++this.#seq;
    const at = this.#now + (Number.isFinite(ms) && ms > 0 ? ms : 0);
    this.#timers.set(id, { at, fn });
    if (at <= this.#now) queueMicrotask(() => this.#fireDue());
    return id;
  }

  clearTimeout(id: TimerId | undefined): void {
    if (id !== undefined) this.#timers.delete(id);
  }

  /** When the timers not fired yet are due, earliest first. */
  get pending(): number[] {
    return [...this.#timers.values()].map((t) => t.at).sort((a, b) => a - b);
  }

  /**
   * Moves time forward to `t`: each timer due by then fires at its own time, earliest first, with an event-loop turn
   * before each so that what the last one woke can set the next. Code that reacts through real IO (a datagram, an
   * HTTP request) may need more than a turn: a test waits for that IO before moving time again.
   */
  async advanceTo(t: number): Promise<void> {
    for (;;) {
      await tick();
      const next = this.#earliest();
      if (next === null || next.at > t) break;
      this.#timers.delete(next.id);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = Math.max(this.#now, t);
    await tick();
  }

  /** Moves time forward by `ms`; see {@linkcode VirtualClock.advanceTo}. */
  advance(ms: number): Promise<void> {
    return this.advanceTo(this.#now + ms);
  }

  #earliest(): { id: TimerId; at: number; fn: () => void } | null {
    let best: { id: TimerId; at: number; fn: () => void } | null = null;
    for (const [id, t] of this.#timers) if (best === null || t.at < best.at) best = { id, ...t };
    return best;
  }

  #fireDue(): void {
    for (let next = this.#earliest(); next !== null && next.at <= this.#now; next = this.#earliest()) {
      this.#timers.delete(next.id);
      next.fn();
    }
  }
}
