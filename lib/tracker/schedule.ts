/**
 * When to announce, to which tracker, with which event: a pure state machine driven by `(state, event, now)`.
 *
 * Policy:
 * - `start` announces at once. A tracker hears `started` the first time we announce to it (so switching to another
 *   tracker in the tier list starts us there too); later announces to it carry no event.
 * - After a success the next announce is due after `interval` (never sooner than `min interval`).
 * - `need-peers` (the engine runs short) brings it forward, but never before {@linkcode EARLY_ANNOUNCE_FLOOR_MS} or
 *   the tracker's `min interval`, whichever is longer, after the last success. It is ignored while an announce is in
 *   flight, before the first success and while backing off.
 * - `completed` is sent once, as soon as possible, and only if some tracker acknowledged `started` (otherwise the
 *   `started` we still owe carries `left=0`, which tells the tracker the same).
 * - A failed announce hands over at once to the next tracker in tier order (BEP 12, one tracker at a time); when the
 *   whole list has failed, the next round waits {@linkcode ANNOUNCE_RETRY_BASE_MS}, doubling, at most
 *   {@linkcode ANNOUNCE_RETRY_MAX_MS}.
 * - `stop` ends the schedule and sends `stopped` to every tracker that acknowledged `started` (or has one in flight).
 *
 * The runtime keeps one timer, for {@linkcode scheduleDeadline}, and feeds back `timer` and the announce results.
 * @module
 */
import type { AnnounceEvent } from "./announce.ts";
import { currentTracker, type TierState, trackerFailed, trackerSucceeded } from "./tiers.ts";

/** The earliest an engine's request for peers may re-announce after a success, when the tracker sets no longer floor. */
export const EARLY_ANNOUNCE_FLOOR_MS = 30_000;
/** The wait after the first round in which every tracker failed; it doubles each further failed round. */
export const ANNOUNCE_RETRY_BASE_MS = 15_000;
/** The longest wait between failed rounds. */
export const ANNOUNCE_RETRY_MAX_MS = 5 * 60_000;

/** The schedule. `nextAt` is when the next announce is due (null: none scheduled); times are monotonic ms. */
export interface ScheduleState {
  readonly phase: "idle" | "running" | "stopped";
  readonly tiers: TierState;
  /** Trackers that acknowledged `started`. */
  readonly started: readonly string[];
  readonly inFlight: { readonly url: string; readonly event?: AnnounceEvent } | null;
  readonly nextAt: number | null;
  readonly intervalMs: number;
  readonly minIntervalMs: number;
  readonly lastSuccessAt: number | null;
  /** Consecutive rounds in which every tracker failed. */
  readonly failedRounds: number;
  readonly completedPending: boolean;
  readonly completedSent: boolean;
}

/** Inputs: commands from the engine, the timer, and the results of the announces the schedule asked for. */
export type ScheduleEvent =
  | { readonly type: "start" }
  | { readonly type: "need-peers" }
  | { readonly type: "completed" }
  | { readonly type: "stop" }
  | { readonly type: "timer" }
  | {
    readonly type: "announce-ok";
    readonly url: string;
    /** Seconds, as the reply gave it. */
    readonly interval: number;
    readonly minInterval?: number;
  }
  | { readonly type: "announce-failed"; readonly url: string };

/** Announce to `url` with `event`; after `stop`, these are the final `stopped` announces, whose results are ignored. */
export type ScheduleAction = { readonly type: "announce"; readonly url: string; readonly event?: AnnounceEvent };

/**
 * A schedule that has not started, over a tier list made by `createTiers`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(createSchedule({ tiers: [["http://t/a"]], tier: 0, index: 0 }).phase, "idle");
 * ```
 */
export function createSchedule(tiers: TierState): ScheduleState {
  return {
    phase: "idle",
    tiers,
    started: [],
    inFlight: null,
    nextAt: null,
    intervalMs: 0,
    minIntervalMs: 0,
    lastSuccessAt: null,
    failedRounds: 0,
    completedPending: false,
    completedSent: false,
  };
}

/**
 * When the runtime's timer should next fire, or null for no timer (not running, or an announce in flight).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const s = createSchedule({ tiers: [["http://t/a"]], tier: 0, index: 0 });
 * eq(scheduleDeadline({ ...s, phase: "running", nextAt: 5000 }), 5000);
 * eq(scheduleDeadline(s), null);
 * ```
 */
export function scheduleDeadline(s: ScheduleState): number | null {
  return s.phase === "running" && s.inFlight === null ? s.nextAt : null;
}

/**
 * Wait before the next round after `failedRounds` consecutive failed rounds (at least 1).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(retryDelayMs(1), 15_000);
 * eq(retryDelayMs(3), 60_000);
 * eq(retryDelayMs(50), ANNOUNCE_RETRY_MAX_MS);
 * ```
 */
export function retryDelayMs(failedRounds: number): number {
  return Math.min(ANNOUNCE_RETRY_MAX_MS, ANNOUNCE_RETRY_BASE_MS * 2 ** Math.min(30, Math.max(0, failedRounds - 1)));
}

function eventFor(s: ScheduleState, url: string): AnnounceEvent | undefined {
  if (!s.started.includes(url)) return "started";
  return s.completedPending ? "completed" : undefined;
}

function launch(s: ScheduleState): [ScheduleState, ScheduleAction[]] {
  const url = currentTracker(s.tiers);
  if (url === null) return [{ ...s, nextAt: null }, []];
  const event = eventFor(s, url);
  const inFlight = event === undefined ? { url } : { url, event };
  return [{ ...s, inFlight, nextAt: null }, [
    event === undefined ? { type: "announce", url } : { type: "announce", url, event },
  ]];
}

/**
 * Advances the schedule by one event at `now`.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * let s = createSchedule({ tiers: [["udp://t:1"]], tier: 0, index: 0 });
 * let acts;
 * [s, acts] = stepSchedule(s, { type: "start" }, 0);
 * eq(acts, [{ type: "announce", url: "udp://t:1", event: "started" }]);
 * [s, acts] = stepSchedule(s, { type: "announce-ok", url: "udp://t:1", interval: 1800 }, 100);
 * eq([acts, scheduleDeadline(s)], [[], 1_800_100]);
 * [s, acts] = stepSchedule(s, { type: "stop" }, 200);
 * eq(acts, [{ type: "announce", url: "udp://t:1", event: "stopped" }]);
 * ```
 */
export function stepSchedule(s: ScheduleState, ev: ScheduleEvent, now: number): [ScheduleState, ScheduleAction[]] {
  if (s.phase === "stopped") return [s, []];
  switch (ev.type) {
    case "start":
      if (s.phase !== "idle") return [s, []];
      return launch({ ...s, phase: "running" });
    case "stop": {
      const urls = [...s.started];
      if (s.inFlight?.event === "started" && !urls.includes(s.inFlight.url)) urls.push(s.inFlight.url);
      return [
        { ...s, phase: "stopped", inFlight: null, nextAt: null },
        urls.map((url) => ({ type: "announce", url, event: "stopped" })),
      ];
    }
    case "timer":
      if (s.phase !== "running" || s.inFlight !== null || s.nextAt === null || now < s.nextAt) return [s, []];
      return launch(s);
    case "need-peers": {
      if (s.phase !== "running" || s.inFlight !== null || s.lastSuccessAt === null || s.failedRounds > 0) {
        return [s, []];
      }
      const earliest = s.lastSuccessAt + Math.max(s.minIntervalMs, EARLY_ANNOUNCE_FLOOR_MS);
      if (earliest <= now) return launch(s);
      return [{ ...s, nextAt: s.nextAt === null ? earliest : Math.min(s.nextAt, earliest) }, []];
    }
    case "completed": {
      if (s.completedPending || s.completedSent) return [s, []];
      const startedSomewhere = s.started.length > 0 || s.inFlight?.event === "started";
      if (!startedSomewhere) return [{ ...s, completedSent: true }, []]; // the `started` we owe carries left=0
      const next = { ...s, completedPending: true };
      if (s.phase !== "running" || s.inFlight !== null) return [next, []];
      return launch(next);
    }
    case "announce-ok": {
      if (s.phase !== "running" || s.inFlight?.url !== ev.url) return [s, []];
      const event = s.inFlight.event;
      const intervalMs = Math.max(0, ev.interval) * 1000;
      const minIntervalMs = Math.max(0, ev.minInterval ?? 0) * 1000;
      const next: ScheduleState = {
        ...s,
        tiers: trackerSucceeded(s.tiers, ev.url),
        started: event === "started" && !s.started.includes(ev.url) ? [...s.started, ev.url] : s.started,
        completedPending: event === "completed" ? false : s.completedPending,
        completedSent: event === "completed" ? true : s.completedSent,
        inFlight: null,
        intervalMs,
        minIntervalMs,
        lastSuccessAt: now,
        failedRounds: 0,
        nextAt: now + Math.max(intervalMs, minIntervalMs),
      };
      if (next.completedPending) return launch(next);
      return [next, []];
    }
    case "announce-failed": {
      if (s.phase !== "running" || s.inFlight?.url !== ev.url) return [s, []];
      const { state: tiers, exhausted } = trackerFailed(s.tiers, ev.url);
      if (!exhausted) return launch({ ...s, tiers, inFlight: null });
      const failedRounds = s.failedRounds + 1;
      return [{ ...s, tiers, inFlight: null, failedRounds, nextAt: now + retryDelayMs(failedRounds) }, []];
    }
  }
}
