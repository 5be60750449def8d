/**
 * The UDP tracker transport (BEP 15): resolves the tracker, gets a connection id (cached per tracker for its 60 s
 * lifetime), announces, and retries each exchange as `udp_exchange.ts` decides. The whole call is bounded by
 * `timeoutMs`; BEP 15's 15 s base delay can be shortened with `baseDelayMs` (e.g. 1–2 s on loopback). Time comes
 * from an injectable {@linkcode Clock}, so tests drive retransmissions and time-outs without waiting for them.
 *
 * Errors: what the tracker or the network did wrong (no answer, a refusal, a packet we cannot read, a socket that
 * fails) is a {@linkcode TrackerError}; anything else that escapes (a `TypeError` in a codec, a `RangeError` from
 * parameters out of range) is our bug and is passed on unchanged, never relabelled as a network error.
 * @module
 */
import type * as NodeDns from "node:dns";
import { nodeBuiltin } from "../node_builtin.ts";
import { ipv4Bytes, ipv6Bytes } from "../address.ts";
import { type AnnounceParams, type AnnounceReply, TrackerError } from "./announce.ts";
import { type Clock, realClock, type TimerId } from "./clock.ts";
import { decodeUdpResponse, encodeAnnounceRequest, encodeConnectRequest, readUdpHeader } from "./udp_codec.ts";
import { type Exchange, type ExchangeAction, startExchange, stepExchange } from "./udp_exchange.ts";

/** How long a connection id stays usable after the tracker sent it (BEP 15: one minute). */
export const UDP_CONNECTION_ID_TTL_MS = 60_000;

/** Options of {@linkcode udpAnnounce}. */
export interface UdpAnnounceOptions {
  /** Bound on the whole call (resolve, connect, announce, retries). */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** First retransmission delay; BEP 15 says 15000, loopback can use 1000–2000. */
  readonly baseDelayMs?: number;
  /** Source of transaction ids; default Math.random. */
  readonly random?: () => number;
  /** Time and timers for retransmissions, the overall bound and connection id expiry; default {@linkcode realClock}. */
  readonly clock?: Clock;
}

interface Target {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
}

type ConnectionIds = Map<string, { readonly id: bigint; readonly expires: number }>;

/** Connection ids by tracker address, one cache per clock: an expiry is only compared with the clock that set it. */
let connectionCaches = new WeakMap<Clock, ConnectionIds>();

function connectionIdsOf(clock: Clock): ConnectionIds {
  let ids = connectionCaches.get(clock);
  if (!ids) connectionCaches.set(clock, ids = new Map());
  return ids;
}

/** Forgets every cached connection id (tests use it to force a fresh connect). */
export function clearUdpConnectionCache(): void {
  connectionCaches = new WeakMap();
}

/**
 * Splits a `udp://host:port[/path]` URL into host and port.
 * @throws {TrackerError} `unsupported-scheme` when it is not a udp URL with a port.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(parseUdpUrl("udp://[::1]:6969/announce"), { host: "::1", port: 6969 });
 * eq(parseUdpUrl("udp://tracker.example:1337"), { host: "tracker.example", port: 1337 });
 * ```
 */
export function parseUdpUrl(url: string): { host: string; port: number } {
  let u: URL;
  try {
    u = new URL(url);
  } catch (e) {
    throw new TrackerError("unsupported-scheme", url, `Cannot announce to "${url}": not a URL`, { cause: e });
  }
  const port = Number(u.port);
  if (u.protocol !== "udp:" || !u.hostname || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TrackerError("unsupported-scheme", url, `Cannot announce to "${url}": expected udp://HOST:PORT`);
  }
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  return { host, port };
}

async function resolve(url: string): Promise<Target> {
  const { host, port } = parseUdpUrl(url);
  if (ipv4Bytes(host)) return { host, port, family: 4 };
  if (ipv6Bytes(host)) return { host, port, family: 6 };
  try {
    // node:dns only for a host name, on first use (an address needs no polyfill); it asks getaddrinfo, as curl does
    const a = await nodeBuiltin<typeof NodeDns>("node:dns").promises.lookup(host);
    return { host: a.address, port, family: a.family === 6 ? 6 : 4 };
  } catch (e) {
    throw new TrackerError("network", url, `Cannot resolve tracker host "${host}"`, { cause: e });
  }
}

function sameHost(a: string, b: Target): boolean {
  const x = b.family === 4 ? ipv4Bytes(a) : ipv6Bytes(a);
  const y = b.family === 4 ? ipv4Bytes(b.host) : ipv6Bytes(b.host);
  return x !== null && y !== null && x.every((v, i) => v === y[i]);
}

type Wake =
  | { readonly kind: "datagram"; readonly body: Uint8Array; readonly from: Deno.Addr }
  | {
    readonly kind: "closed";
    readonly error: unknown;
  }
  | { readonly kind: "timer" }
  | { readonly kind: "abort" };

/** One socket and its single outstanding receive, shared by the connect and announce exchanges of one call. */
class Session {
  #pending: Promise<Wake> | null = null;
  readonly conn: Deno.DatagramConn;
  constructor(
    readonly url: string,
    readonly target: Target,
    readonly signal: AbortSignal | undefined,
    readonly clock: Clock,
  ) {
    try {
      this.conn = Deno.listenDatagram({
        transport: "udp",
        hostname: target.family === 4 ? "0.0.0.0" : "::",
        port: 0,
      });
    } catch (e) {
      if (e instanceof TypeError) throw e; // no such API (run without --unstable-net) or misuse: a bug, not the network
      throw new TrackerError("network", url, `Cannot open a UDP socket for ${url}`, { cause: e });
    }
  }

  #receive(): Promise<Wake> {
    this.#pending ??= this.conn.receive().then(
      ([body, from]): Wake => ({ kind: "datagram", body, from }),
      (error): Wake => ({ kind: "closed", error }),
    );
    return this.#pending;
  }

  /** Waits for a datagram from the tracker, the timer at `at`, or the caller's abort. */
  async #wait(at: number): Promise<Wake> {
    let timer: TimerId | undefined;
    let onAbort: (() => void) | undefined;
    const sleep = new Promise<Wake>((res) => {
      timer = this.clock.setTimeout(() => res({ kind: "timer" }), Math.max(0, at - this.clock.now()));
    });
    const abort = new Promise<Wake>((res) => {
      onAbort = () => res({ kind: "abort" });
      if (this.signal?.aborted) onAbort();
      else this.signal?.addEventListener("abort", onAbort, { once: true });
    });
    try {
      const w = await Promise.race([this.#receive(), sleep, abort]);
      if (w.kind === "datagram" || w.kind === "closed") this.#pending = null;
      return w;
    } finally {
      this.clock.clearTimeout(timer);
      if (onAbort) this.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Runs one exchange to its end: the reply body whose transaction id matched, or an error. */
  async exchange(
    packet: Uint8Array,
    txid: number,
    until: number,
    baseDelayMs: number | undefined,
  ): Promise<Uint8Array> {
    let [x, acts]: [Exchange | null, ExchangeAction[]] = startExchange(txid, this.clock.now(), {
      baseDelayMs,
      until,
    });
    let wakeAt = until;
    for (;;) {
      for (const a of acts) {
        switch (a.type) {
          case "send":
            try {
              await this.conn.send(packet, { transport: "udp", hostname: this.target.host, port: this.target.port });
            } catch (e) {
              throw new TrackerError("network", this.url, `Cannot send to UDP tracker ${this.url}`, { cause: e });
            }
            break;
          case "wake":
            wakeAt = a.at;
            break;
          case "deliver":
            return a.body;
          case "give-up":
            throw new TrackerError(
              "timeout",
              this.url,
              `No reply from UDP tracker ${this.url} after ${a.attempts} attempt${a.attempts === 1 ? "" : "s"}`,
            );
        }
      }
      if (x === null) throw new Error("UDP exchange ended without a result"); // unreachable: every end has an action
      const w = await this.#wait(wakeAt);
      switch (w.kind) {
        case "abort":
          throw new TrackerError("network", this.url, `Announce to ${this.url} was cancelled`);
        case "closed":
          throw new TrackerError("network", this.url, `UDP socket for ${this.url} failed`, { cause: w.error });
        case "timer":
          [x, acts] = stepExchange(x, { type: "timer" }, this.clock.now());
          break;
        case "datagram": {
          const head = readUdpHeader(w.body);
          const from = w.from as Deno.NetAddr;
          if (!head || from.port !== this.target.port || !sameHost(from.hostname, this.target)) {
            acts = []; // not from our tracker, or too short to be an answer: keep waiting
            break;
          }
          [x, acts] = stepExchange(x, { type: "datagram", txid: head.txid, body: w.body }, this.clock.now());
          break;
        }
      }
    }
  }

  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.#pending;
  }
}

function txidFrom(random: () => number): number {
  return Math.floor(random() * 0x1_0000_0000) >>> 0;
}

/**
 * Announces to a UDP tracker (BEP 15). Connection ids are cached per tracker address for
 * {@linkcode UDP_CONNECTION_ID_TTL_MS}; a tracker error to an announce made with a cached id retries once with a
 * fresh connect.
 * @throws {TrackerError} `failure` (error action, message in the text), `timeout` (no answer within `timeoutMs` or
 * after the last retransmission), `malformed`, `network` (resolve or socket failure, or `signal` aborted),
 * `unsupported-scheme` (not `udp://HOST:PORT`).
 */
export async function udpAnnounce(url: string, p: AnnounceParams, opts: UdpAnnounceOptions): Promise<AnnounceReply> {
  const clock = opts.clock ?? realClock;
  const until = clock.now() + opts.timeoutMs;
  const random = opts.random ?? Math.random;
  const connectionIds = connectionIdsOf(clock);
  const target = await withDeadline(resolve(url), url, opts, clock);
  const session = new Session(url, target, opts.signal, clock);
  const key = `${target.family === 6 ? `[${target.host}]` : target.host}:${target.port}`;
  try {
    for (let round = 0;; round++) {
      let cached = connectionIds.get(key);
      if (cached && cached.expires <= clock.now()) cached = undefined;
      let connectionId: bigint;
      if (cached) {
        connectionId = cached.id;
      } else {
        connectionIds.delete(key);
        const txid = txidFrom(random);
        const body = await session.exchange(encodeConnectRequest(txid), txid, until, opts.baseDelayMs);
        const r = decodeUdpResponse(body, { expect: "connect", family: target.family, url });
        if (r.type === "error") throw new TrackerError("failure", url, `Tracker refused to connect: ${r.message}`);
        if (r.type !== "connect") throw new TrackerError("malformed", url, "Cannot read UDP tracker response");
        connectionId = r.connectionId;
        connectionIds.set(key, { id: connectionId, expires: clock.now() + UDP_CONNECTION_ID_TTL_MS });
      }
      const txid = txidFrom(random);
      const body = await session.exchange(encodeAnnounceRequest(connectionId, txid, p), txid, until, opts.baseDelayMs);
      const r = decodeUdpResponse(body, { expect: "announce", family: target.family, url });
      if (r.type === "error") {
        connectionIds.delete(key);
        if (cached && round === 0) continue; // the cached id may have been forgotten by the tracker: reconnect once
        throw new TrackerError("failure", url, `Tracker refused the announce: ${r.message}`);
      }
      if (r.type !== "announce") throw new TrackerError("malformed", url, "Cannot read UDP tracker response");
      return r.reply;
    }
  } catch (e) {
    // a refusal keeps the id; a time-out, a bad packet or a bug of ours forgets it
    if (!(e instanceof TrackerError && e.code === "failure")) connectionIds.delete(key);
    throw e;
  } finally {
    await session.close();
  }
}

async function withDeadline<T>(work: Promise<T>, url: string, opts: UdpAnnounceOptions, clock: Clock): Promise<T> {
  let timer: TimerId | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = clock.setTimeout(
      () => rej(new TrackerError("timeout", url, `Cannot resolve ${url} within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
  });
  try {
    if (opts.signal?.aborted) throw new TrackerError("network", url, `Announce to ${url} was cancelled`);
    return await Promise.race([work, timeout]);
  } finally {
    clock.clearTimeout(timer);
  }
}
