/**
 * One BEP 15 request/response exchange as a state machine: send, wait, retransmit after `base · 2^n`, give up after
 * {@linkcode UDP_TRACKER_MAX_ATTEMPT} or at an overall deadline. The runtime sends, sleeps and feeds back datagrams
 * and timers.
 *
 * BEP 15 waits 15 s · 2^n (n up to 8, about an hour in all). A client cannot wait that long for one announce, so the
 * base delay is a parameter and every exchange also ends at `until`: the transport passes its whole time budget
 * there, and on loopback (tests, the demo) a base of 1–2 s keeps retries quick.
 * @module
 */
import { UDP_TRACKER_MAX_ATTEMPT } from "../limits.ts";

/** BEP 15's first retransmission delay, in ms. */
export const BEP15_BASE_DELAY_MS = 15_000;

/** An exchange in flight: its transaction id, the 0-based send number, when to resend, and when to give up. */
export interface Exchange {
  readonly txid: number;
  readonly attempt: number;
  readonly deadline: number;
  readonly until: number;
  readonly baseDelayMs: number;
}

/** What happened: a datagram (already matched to a transaction id by the transport) or a timer firing. */
export type ExchangeEvent =
  | { readonly type: "datagram"; readonly txid: number; readonly body: Uint8Array }
  | { readonly type: "timer" };

/** What the runtime must do: (re)send the request, sleep until `at`, hand over the reply, or give up. */
export type ExchangeAction =
  | { readonly type: "send" }
  | { readonly type: "wake"; readonly at: number }
  | { readonly type: "deliver"; readonly body: Uint8Array }
  | { readonly type: "give-up"; readonly attempts: number };

/**
 * Wait after send number `attempt` (0-based): `baseDelayMs`, doubling.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(retransmitDelayMs(0), 15_000);
 * eq(retransmitDelayMs(2, 1000), 4000);
 * ```
 */
export function retransmitDelayMs(attempt: number, baseDelayMs: number = BEP15_BASE_DELAY_MS): number {
  return baseDelayMs * 2 ** attempt;
}

/**
 * Starts an exchange at `now`: send once, then wake at the first retransmission deadline (or `until`, if sooner).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const [x, acts] = startExchange(5, 1000, { baseDelayMs: 2000, until: 10_000 });
 * eq(acts, [{ type: "send" }, { type: "wake", at: 3000 }]);
 * eq(x.attempt, 0);
 * ```
 */
export function startExchange(
  txid: number,
  now: number,
  opts: { readonly baseDelayMs?: number; readonly until?: number } = {},
): [Exchange, ExchangeAction[]] {
  const baseDelayMs = opts.baseDelayMs ?? BEP15_BASE_DELAY_MS;
  const x: Exchange = {
    txid,
    attempt: 0,
    deadline: now + retransmitDelayMs(0, baseDelayMs),
    until: opts.until ?? Infinity,
    baseDelayMs,
  };
  return [x, [{ type: "send" }, { type: "wake", at: Math.min(x.deadline, x.until) }]];
}

/**
 * Advances one exchange by one event; the next state is null once the exchange is over. A datagram with another
 * transaction id is stale or forged: it is ignored and the exchange keeps waiting.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const [x] = startExchange(5, 0, { baseDelayMs: 1000 });
 * eq(stepExchange(x, { type: "datagram", txid: 6, body: new Uint8Array() }, 10), [x, []]);
 * const [y, acts] = stepExchange(x, { type: "timer" }, 1000);
 * eq(acts, [{ type: "send" }, { type: "wake", at: 3000 }]);
 * eq(stepExchange(y as typeof x, { type: "datagram", txid: 5, body: new Uint8Array([1]) }, 1500),
 *   [null, [{ type: "deliver", body: new Uint8Array([1]) }]]);
 * ```
 */
export function stepExchange(x: Exchange, ev: ExchangeEvent, now: number): [Exchange | null, ExchangeAction[]] {
  switch (ev.type) {
    case "datagram":
      if (ev.txid !== x.txid) return [x, []];
      return [null, [{ type: "deliver", body: ev.body }]];
    case "timer": {
      if (now >= x.until) return [null, [{ type: "give-up", attempts: x.attempt + 1 }]];
      if (now < x.deadline) return [x, [{ type: "wake", at: Math.min(x.deadline, x.until) }]];
      if (x.attempt >= UDP_TRACKER_MAX_ATTEMPT) return [null, [{ type: "give-up", attempts: x.attempt + 1 }]];
      const attempt = x.attempt + 1;
      const next = { ...x, attempt, deadline: now + retransmitDelayMs(attempt, x.baseDelayMs) };
      return [next, [{ type: "send" }, { type: "wake", at: Math.min(next.deadline, next.until) }]];
    }
  }
}
