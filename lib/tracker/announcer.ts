/**
 * The announcer runtime: runs the `schedule.ts` state machine against real trackers (HTTP(S) and UDP), with one timer
 * for the schedule's next deadline and at most one announce in flight (BEP 12: one tracker at a time).
 *
 * Errors are split as h11 splits them. The tracker's faults (no answer, an HTTP status, a failure reason, a reply we
 * cannot read, an unreachable host) arrive as a {@linkcode TrackerError}: they go to `onError` and the schedule moves
 * on to the next tracker or retries later. Anything else (a `TypeError` in a codec, a callback that throws) is a bug
 * of ours: it goes to `onBug`, once per occurrence, and the announcer stops scheduling announces.
 * @module
 */
import type { PeerAddress } from "../address.ts";
import { type AnnounceParams, type AnnounceReply, TrackerError } from "./announce.ts";
import { type Clock, realClock, type TimerId } from "./clock.ts";
import { httpAnnounce } from "./http.ts";
import {
  createSchedule,
  type ScheduleAction,
  scheduleDeadline,
  type ScheduleEvent,
  type ScheduleState,
  stepSchedule,
} from "./schedule.ts";
import { createTiers } from "./tiers.ts";
import { udpAnnounce } from "./udp.ts";

/** What a transport gets besides the URL and the parameters. */
export interface AnnounceTransportOptions {
  /** Bound on the announce. */
  readonly timeoutMs: number;
  /** Aborted when the announcer stops: the transport should reject at once (with a `network` TrackerError). */
  readonly signal: AbortSignal;
  /** The announcer's clock: time-outs and retransmissions run on it. */
  readonly clock: Clock;
  /** The announcer's source of randomness (UDP transaction ids). */
  readonly random: () => number;
  /** First UDP retransmission delay. */
  readonly udpBaseDelayMs: number;
}

/**
 * Sends one announce and reads the reply. The tracker's faults must reject with a {@linkcode TrackerError}; anything
 * else a transport throws is taken for a bug and reported to `onBug`.
 */
export type AnnounceTransport = (
  url: string,
  params: AnnounceParams,
  opts: AnnounceTransportOptions,
) => Promise<AnnounceReply>;

/** UDP (BEP 15) for udp:// URLs, HTTP(S) for the others. */
function announceOverNetwork(url: string, p: AnnounceParams, o: AnnounceTransportOptions): Promise<AnnounceReply> {
  if (/^udp:/i.test(url)) {
    return udpAnnounce(url, p, {
      timeoutMs: o.timeoutMs,
      signal: o.signal,
      clock: o.clock,
      random: o.random,
      baseDelayMs: o.udpBaseDelayMs,
    });
  }
  return httpAnnounce(url, p, { timeoutMs: o.timeoutMs, signal: o.signal, clock: o.clock });
}

/** Options of {@linkcode Announcer}. */
export interface AnnouncerOptions {
  /** Tiers of http(s):// and udp:// URLs; others are ignored with a warning via `onWarning`. */
  readonly tiers: readonly (readonly string[])[];
  readonly infoHash: Uint8Array;
  readonly peerId: Uint8Array;
  readonly port: number;
  readonly stats: () => { uploaded: number; downloaded: number; left: number };
  readonly onPeers: (peers: readonly PeerAddress[], tracker: string) => void;
  /** A tracker failed (its fault, not ours); the schedule tries the next one or retries later. */
  readonly onError?: (tracker: string, err: TrackerError) => void;
  readonly onWarning?: (tracker: string, message: string) => void;
  /**
   * Anything but a {@linkcode TrackerError} that escaped an announce, the schedule or one of the callbacks above: a
   * bug. The announcer stops scheduling announces (`stop()` still sends `stopped`); the owner should end with an
   * internal error. Default: `reportError(err)`, which ends the process with the error and its stack, as an uncaught
   * exception would.
   */
  readonly onBug?: (err: unknown) => void;
  /** How announces are sent; default UDP (BEP 15) for udp:// URLs and HTTP(S) for the others. */
  readonly transport?: AnnounceTransport;
  /** Time and timers for the schedule, the announces' time-outs and `stop`; default {@linkcode realClock}. */
  readonly clock?: Clock;
  /** Peers to ask for; default 80. */
  readonly numwant?: number;
  /** Bound on each announce; default 15000. */
  readonly timeoutMs?: number;
  /** Default Math.random: shuffles the tiers, picks the key and UDP transaction ids. */
  readonly random?: () => number;
  /**
   * First UDP retransmission delay. BEP 15 says 15 s, which would allow a single try within `timeoutMs`; the default
   * is an eighth of `timeoutMs` (at least 500 ms), so a request is sent up to four times.
   */
  readonly udpBaseDelayMs?: number;
}

/** Counters the engine reads to tell "no tracker works" from "no peers yet". */
export interface AnnouncerStatus {
  readonly attempts: number;
  readonly successes: number;
  readonly lastError?: TrackerError;
}

const DEFAULT_NUMWANT = 80;
const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_STOP_TIMEOUT_MS = 3_000;

function count(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(Math.min(n, Number.MAX_SAFE_INTEGER)) : 0;
}

/** Announces a torrent to its trackers for as long as it runs; see `schedule.ts` for when and with which event. */
export class Announcer {
  readonly #opts: AnnouncerOptions;
  readonly #random: () => number;
  readonly #clock: Clock;
  readonly #key: number;
  readonly #trackerIds = new Map<string, string>();
  #state: ScheduleState;
  #timer: TimerId | undefined;
  #inFlight: { readonly ctl: AbortController; readonly done: Promise<void> } | null = null;
  #stopping: Promise<void> | null = null;
  #closed = false;
  /** A bug was reported: no more announces are scheduled. */
  #halted = false;
  #attempts = 0;
  #successes = 0;
  #lastError: TrackerError | undefined;

  /** Filters the tier list (warning about URLs it cannot use) and shuffles each tier. Nothing is sent before `start`. */
  constructor(opts: AnnouncerOptions) {
    this.#opts = opts;
    this.#random = opts.random ?? Math.random;
    this.#clock = opts.clock ?? realClock;
    this.#key = Math.floor(this.#random() * 0x1_0000_0000) >>> 0;
    const tiers = opts.tiers.map((tier) =>
      tier.filter((url) => {
        if (/^(https?|udp):\/\//i.test(url)) return true;
        opts.onWarning?.(url, `Ignoring tracker "${url}": only http, https and udp trackers are supported`);
        return false;
      })
    );
    this.#state = createSchedule(createTiers(tiers, this.#random));
  }

  /** Counts of announces tried and answered, and the last error. */
  get status(): AnnouncerStatus {
    return this.#lastError === undefined
      ? { attempts: this.#attempts, successes: this.#successes }
      : { attempts: this.#attempts, successes: this.#successes, lastError: this.#lastError };
  }

  /** Sends the first announce (`started`) now. */
  start(): void {
    this.#step({ type: "start" });
  }

  /** The engine runs short of peers: announce early if the tracker's minimum interval allows. */
  needPeers(): void {
    this.#step({ type: "need-peers" });
  }

  /** The download finished: send `completed` (once). */
  completed(): void {
    this.#step({ type: "completed" });
  }

  /**
   * Cancels the timer and any announce in flight, sends `stopped` to the trackers that got `started`, and resolves
   * when they answered or `timeoutMs` passed. Never throws (a bug met on the way goes to `onBug`); calling it again
   * returns the same promise.
   */
  stop(timeoutMs: number = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    this.#stopping ??= this.#stop(timeoutMs);
    return this.#stopping;
  }

  async #stop(timeoutMs: number): Promise<void> {
    this.#closed = true;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const [state, acts] = stepSchedule(this.#state, { type: "stop" }, this.#clock.now());
    this.#state = state;
    const inFlight = this.#inFlight;
    this.#inFlight = null;
    inFlight?.ctl.abort();
    await inFlight?.done;
    if (acts.length === 0) return;
    const ctl = new AbortController();
    const timer = this.#clock.setTimeout(() => ctl.abort(), timeoutMs);
    try {
      const results = await Promise.allSettled(acts.map((a) => this.#send(a, { timeoutMs, signal: ctl.signal })));
      // the answers to `stopped` do not matter, and neither do the trackers' faults; our bugs still do
      for (const r of results) if (r.status === "rejected" && !(r.reason instanceof TrackerError)) this.#bug(r.reason);
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }

  /** Reports a bug and stops scheduling: after one, the state may be anything. */
  #bug(err: unknown): void {
    this.#halted = true;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    (this.#opts.onBug ?? reportError)(err);
  }

  #step(ev: ScheduleEvent): void {
    if (this.#closed || this.#halted) return;
    const [state, acts] = stepSchedule(this.#state, ev, this.#clock.now());
    this.#state = state;
    for (const a of acts) this.#launch(a);
    this.#arm();
  }

  #arm(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const at = scheduleDeadline(this.#state);
    if (at === null || this.#closed || this.#halted) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      try {
        this.#step({ type: "timer" });
      } catch (e) {
        this.#bug(e);
      }
    }, Math.max(0, at - this.#clock.now()));
  }

  #launch(a: ScheduleAction): void {
    const ctl = new AbortController();
    const done = this.#send(a, { timeoutMs: this.#opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, signal: ctl.signal }).then(
      (reply) => {
        if (this.#closed) return;
        this.#inFlight = null;
        this.#successes++;
        if (reply.trackerId !== undefined) this.#trackerIds.set(a.url, reply.trackerId);
        if (reply.warning !== undefined) this.#opts.onWarning?.(a.url, reply.warning);
        this.#step({ type: "announce-ok", url: a.url, interval: reply.interval, minInterval: reply.minInterval });
        if (reply.peers.length > 0) this.#opts.onPeers(reply.peers, a.url);
      },
      (e: unknown) => {
        if (!(e instanceof TrackerError)) throw e; // ours, not the tracker's: to #bug below, even after stop()
        if (this.#closed) return;
        this.#inFlight = null;
        this.#lastError = e;
        this.#opts.onError?.(a.url, e);
        this.#step({ type: "announce-failed", url: a.url });
      },
    ).catch((e: unknown) => this.#bug(e)); // a transport's bug, or a throw in a callback or the schedule
    this.#inFlight = { ctl, done };
  }

  // async, so that a throw before the first await (in `stats`, in the transport) is a rejection like any other
  async #send(a: ScheduleAction, opts: { timeoutMs: number; signal: AbortSignal }): Promise<AnnounceReply> {
    this.#attempts++;
    const s = this.#opts.stats();
    const p: AnnounceParams = {
      infoHash: this.#opts.infoHash,
      peerId: this.#opts.peerId,
      port: this.#opts.port,
      uploaded: count(s.uploaded),
      downloaded: count(s.downloaded),
      left: count(s.left),
      key: this.#key,
      numwant: a.event === "stopped" ? 0 : this.#opts.numwant ?? DEFAULT_NUMWANT,
      event: a.event,
      trackerId: this.#trackerIds.get(a.url),
    };
    const transport = this.#opts.transport ?? announceOverNetwork;
    return await transport(a.url, p, {
      ...opts,
      clock: this.#clock,
      random: this.#random,
      udpBaseDelayMs: this.#opts.udpBaseDelayMs ?? Math.max(500, Math.floor(opts.timeoutMs / 8)),
    });
  }
}
