/**
 * The listening socket: accepts incoming peers on one port (IPv6 and IPv4 on a dual-stack socket, else IPv4 only),
 * reads each handshake and routes it to the torrent with that info-hash; unknown info-hashes are refused.
 *
 * Under a flood it stays cheap and fair: accept errors (EMFILE when descriptors run out) back off from 50 ms to 1 s
 * instead of spinning; at most {@linkcode MAX_PENDING_HANDSHAKES} connections wait in their handshake (a new one
 * closes the oldest); each has {@linkcode INCOMING_FIRST_BYTES_TIMEOUT_MS} for its first 20 bytes and
 * {@linkcode INCOMING_HANDSHAKE_TIMEOUT_MS} for the whole handshake, MSE included. Whatever goes wrong with one
 * connection closes that connection only; what is not a peer's fault is reported to `onError` as a bug.
 * @module
 */
import type { PeerAddress } from "../address.ts";
import { MAX_PENDING_HANDSHAKES } from "../limits.ts";
import type { Handshake } from "../wire/handshake.ts";
import { WireError } from "../wire/frame.ts";
import {
  CRYPTO_PLAINTEXT,
  looksLikePlainHandshake,
  MSE_KEY_BYTES,
  MSE_MAX_IA,
  MSE_MAX_PAD,
  parseInitiatorStep3,
  publicKey,
  receiverStep4,
  sharedSecret,
} from "../wire/mse.ts";
import { FetchError } from "./errors.ts";
import { isPeerFault, readHandshake, readUntil, writeAll } from "./peer_conn.ts";
import { fromHex, toHex } from "../bytes.ts";
import { clearTimer, setTimer, type TimerHandle } from "../timers.ts";

/** How long an incoming peer has for its whole handshake, MSE included. */
export const INCOMING_HANDSHAKE_TIMEOUT_MS = 10_000;
/** How long an incoming peer has for its first 20 bytes (a protocol name, or the start of an MSE key). */
export const INCOMING_FIRST_BYTES_TIMEOUT_MS = 5_000;
/** The first wait after a failed `accept`; it doubles on each failure in a row. */
export const ACCEPT_BACKOFF_MIN_MS = 50;
/** The longest wait after a failed `accept`. */
export const ACCEPT_BACKOFF_MAX_MS = 1_000;

/** Takes an incoming peer whose handshake named this torrent; returns false to refuse it (e.g. no free slot). */
export type AcceptPeer = (conn: Deno.TcpConn, theirs: Handshake, leftover: Uint8Array, from: PeerAddress) => boolean;

/** What went wrong in a listener: `accept` failed (e.g. EMFILE), or a connection hit a `bug` (not a peer's fault). */
export type ListenerErrorCode = "accept" | "bug";

/** A listener problem worth reporting; the cause is the original error. */
export class ListenerError extends Error {
  override readonly name = "ListenerError";
  /** Makes the error. */
  constructor(readonly code: ListenerErrorCode, detail: string, options?: ErrorOptions) {
    super(detail, options);
  }
}

/** Options of {@linkcode Listener.open}; every one has a default. */
export interface ListenerOptions {
  /** Accept failures and bugs; the listener goes on either way. */
  readonly onError?: (err: ListenerError) => void;
  /** The most connections waiting in their handshake (default {@linkcode MAX_PENDING_HANDSHAKES}). */
  readonly maxPending?: number;
  /** Default {@linkcode INCOMING_HANDSHAKE_TIMEOUT_MS}. */
  readonly handshakeTimeoutMs?: number;
  /** Default {@linkcode INCOMING_FIRST_BYTES_TIMEOUT_MS}. */
  readonly firstBytesTimeoutMs?: number;
  /** The address to listen on (`--bind`); default every address, IPv6 and IPv4. */
  readonly hostname?: string;
}

/** Wait after `failures` failed accepts in a row (1-based): 50 ms doubling up to 1 s. */
export function acceptBackoffMs(failures: number): number {
  return Math.min(ACCEPT_BACKOFF_MAX_MS, ACCEPT_BACKOFF_MIN_MS * 2 ** Math.min(failures - 1, 30));
}

export { isPeerFault };

/** A bound listening socket that routes incoming peers by info-hash. */
export class Listener {
  readonly #listener: Deno.TcpListener;
  readonly #routes = new Map<string, AcceptPeer>();
  /** Connections in their handshake, oldest first (a Set keeps insertion order). */
  readonly #pending = new Set<Deno.TcpConn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #loop: Promise<void>;
  #onError: (err: ListenerError) => void;
  readonly #maxPending: number;
  readonly #handshakeMs: number;
  readonly #firstBytesMs: number;
  #closed = false;
  #wake: (() => void) | null = null;
  #acceptErrors = 0;
  #evicted = 0;

  private constructor(listener: Deno.TcpListener, o: ListenerOptions) {
    this.#listener = listener;
    this.#onError = o.onError ?? (() => {});
    this.#maxPending = Math.max(1, o.maxPending ?? MAX_PENDING_HANDSHAKES);
    this.#handshakeMs = o.handshakeTimeoutMs ?? INCOMING_HANDSHAKE_TIMEOUT_MS;
    this.#firstBytesMs = Math.min(o.firstBytesTimeoutMs ?? INCOMING_FIRST_BYTES_TIMEOUT_MS, this.#handshakeMs);
    this.#loop = this.#accept();
  }

  /**
   * Binds `port` (0: any free port) on every address, dual-stack where the system allows.
   * @throws {Deno.errors.AddrInUse} when the port is taken.
   */
  static open(port: number, options: ListenerOptions = {}): Listener {
    if (options.hostname !== undefined) {
      return new Listener(Deno.listen({ hostname: options.hostname, port, transport: "tcp" }), options);
    }
    let l: Deno.TcpListener;
    try {
      l = Deno.listen({ hostname: "::", port, transport: "tcp" });
    } catch (e) {
      if (e instanceof Deno.errors.AddrInUse) throw e;
      l = Deno.listen({ hostname: "0.0.0.0", port, transport: "tcp" });
    }
    return new Listener(l, options);
  }

  /** The port actually bound. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Where accept failures and bugs go from now on (e.g. the session that takes the listener over). */
  set onError(fn: (err: ListenerError) => void) {
    this.#onError = fn;
  }

  /** Connections accepted whose handshake is not read yet. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Failed `accept` calls so far. */
  get acceptErrors(): number {
    return this.#acceptErrors;
  }

  /** Connections in their handshake closed so far to make room for newer ones. */
  get evicted(): number {
    return this.#evicted;
  }

  /** Routes handshakes for `infoHashHex` to `accept`. */
  register(infoHashHex: string, accept: AcceptPeer): void {
    this.#routes.set(infoHashHex, accept);
  }

  /** Stops routing `infoHashHex`. */
  unregister(infoHashHex: string): void {
    this.#routes.delete(infoHashHex);
  }

  async #accept(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closed) return;
        // EMFILE and the like leave the connection queued: trying again at once would spin
        this.#acceptErrors++;
        failures++;
        const wait = acceptBackoffMs(failures);
        this.#report("accept", `Cannot accept an incoming connection (retrying in ${wait} ms)`, e);
        await this.#sleep(wait);
        continue;
      }
      failures = 0;
      if (this.#closed) {
        closeQuietly(conn);
        return;
      }
      this.#admit(conn);
    }
  }

  #admit(conn: Deno.TcpConn): void {
    while (this.#pending.size >= this.#maxPending) {
      // the oldest has had the longest to speak: a flood of silent connections cannot lock newcomers out
      const oldest = this.#pending.values().next().value as Deno.TcpConn;
      this.#pending.delete(oldest);
      closeQuietly(oldest);
      this.#evicted++;
    }
    this.#pending.add(conn);
    const task = this.#route(conn).catch((e) => {
      closeQuietly(conn);
      if (!isPeerFault(e)) this.#report("bug", "Unexpected error while reading an incoming handshake", e);
    }).finally(() => {
      this.#pending.delete(conn);
      this.#tasks.delete(task);
    });
    this.#tasks.add(task);
  }

  #report(code: ListenerErrorCode, detail: string, cause: unknown): void {
    try {
      this.#onError(new ListenerError(code, detail, { cause }));
    } catch { /* a failing reporter must not stop the listener */ }
  }

  /** Waits `ms`, or less if `close()` comes first. */
  async #sleep(ms: number): Promise<void> {
    let timer: TimerHandle | undefined;
    await new Promise<void>((resolve) => {
      timer = setTimer(resolve, ms);
      this.#wake = resolve;
    });
    clearTimer(timer);
    this.#wake = null;
  }

  async #route(conn: Deno.TcpConn): Promise<void> {
    const deadline = performance.now() + this.#handshakeMs;
    const left = () => Math.max(1, deadline - performance.now());
    conn.setNoDelay(true);
    const r = conn.remoteAddr as Deno.NetAddr;
    const from = { host: r.hostname.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1"), port: r.port };
    // a plain handshake starts with its protocol name; anything else may be an MSE public key
    const firstMs = Math.min(this.#firstBytesMs, left());
    const first = await readUntil(conn, firstMs, new Uint8Array(0), (b) => b.length >= 20 ? b.slice() : null, 4096);
    let initial: Uint8Array = first;
    if (!looksLikePlainHandshake(first)) initial = await this.#acceptMse(conn, first, left);
    const { theirs, leftover } = await readHandshake(conn, left(), undefined, initial);
    if (!this.#pending.delete(conn)) return; // evicted or closed meanwhile: the socket is gone
    const accept = this.#routes.get(toHex(theirs.infoHash));
    let taken = false;
    try {
      taken = accept !== undefined && accept(conn, theirs, leftover, from);
    } finally {
      if (!taken) closeQuietly(conn);
    }
  }

  /**
   * The receiving side of MSE/PE (see `wire/mse.ts`): answers the initiator's public key, finds which of our
   * torrents it names, selects plaintext for the payload stream, and returns the plaintext that follows (the
   * BitTorrent handshake first). A peer that offers only RC4 for the payload is refused.
   */
  async #acceptMse(conn: Deno.TcpConn, first: Uint8Array, left: () => number): Promise<Uint8Array> {
    const theirKey = await readUntil(conn, left(), first, (b) => b.length >= MSE_KEY_BYTES ? b.slice() : null, 4096);
    const secretBytes = crypto.getRandomValues(new Uint8Array(20));
    const secret = secretBytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n);
    const pad = crypto.getRandomValues(new Uint8Array(Math.floor(Math.random() * 64)));
    const ours = new Uint8Array(MSE_KEY_BYTES + pad.length);
    ours.set(publicKey(secret));
    ours.set(pad, MSE_KEY_BYTES);
    await writeAll(conn, ours);
    const s = sharedSecret(theirKey.subarray(0, MSE_KEY_BYTES), secret);
    const hashes = [...this.#routes.keys()].map(fromHex);
    const step = await readUntil(conn, left(), theirKey.slice(MSE_KEY_BYTES), (b) => {
      const r = parseInitiatorStep3(b, s, hashes);
      return r.kind === "done" ? r.value : null;
    }, MSE_MAX_PAD * 2 + MSE_MAX_IA + 64);
    if ((step.provide & CRYPTO_PLAINTEXT) === 0) {
      throw new WireError("bad-handshake", 0, "the peer wants an RC4 payload stream, which btfetch does not offer");
    }
    await writeAll(conn, receiverStep4(step.cipherB, CRYPTO_PLAINTEXT));
    const out = new Uint8Array(step.ia.length + step.rest.length);
    out.set(step.ia);
    out.set(step.rest, step.ia.length);
    return out;
  }

  /** Closes the socket and the connections still in their handshake; connections handed to torrents stay open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#listener);
    this.#wake?.();
    for (const c of this.#pending) closeQuietly(c);
    await this.#loop;
    await Promise.allSettled([...this.#tasks]);
  }
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch { /* already closed */ }
}

/**
 * Opens the listener a client uses: `port` when given (0: any), else the first free port of 6881–6889, else any.
 * @throws {FetchError} `listen` when the given port is in use or not allowed.
 */
export function openListener(port: number | undefined, options: ListenerOptions = {}): Listener {
  if (port !== undefined) {
    try {
      return Listener.open(port, options);
    } catch (e) {
      if (e instanceof Deno.errors.AddrInUse) {
        throw new FetchError("listen", `Cannot listen on port ${port}: it is in use`);
      }
      if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
        throw new FetchError("listen", `Cannot listen on port ${port}: permission denied`);
      }
      if (options.hostname !== undefined && e instanceof Deno.errors.AddrNotAvailable) {
        throw new FetchError("listen", `Cannot listen on ${options.hostname}: no such address on this machine`);
      }
      throw e;
    }
  }
  for (let p = 6881; p <= 6889; p++) {
    try {
      return Listener.open(p, options);
    } catch (e) {
      if (options.hostname !== undefined && e instanceof Deno.errors.AddrNotAvailable) {
        throw new FetchError("listen", `Cannot listen on ${options.hostname}: no such address on this machine`);
      }
      if (!(e instanceof Deno.errors.AddrInUse)) throw e;
    }
  }
  return Listener.open(0, options);
}
