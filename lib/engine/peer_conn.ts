/**
 * One peer's TCP connection: the handshake, a read loop that cuts frames out of one reused buffer, and a write
 * queue that batches small messages into one socket write. The only place that reads or writes peer sockets.
 *
 * Every frame goes through the wire codec (`readFrame`, `decodeMessage`), the one the fuzz tests exercise; a `piece`
 * message's block is a view of the read buffer, valid only during the handler's call, so a block is copied exactly
 * once, into its piece buffer.
 * @module
 */
import { formatAddress, type PeerAddress } from "../address.ts";
import { BitfieldError } from "../bitfield.ts";
import { readFrame, WireError } from "../wire/frame.ts";
import { maybeYield } from "../turns.ts";
import { decodeHandshake, encodeHandshake, type Handshake, HANDSHAKE_BYTES } from "../wire/handshake.ts";
import {
  decodeMessage,
  encodeMessageInto,
  type Message,
  messageFrameLength,
  PIECE_HEADER_BYTES,
  writePieceHeader,
} from "../wire/messages.ts";
import { clearTimer, setTimer, type TimerHandle } from "../timers.ts";

/** The read buffer of a new connection; it grows, up to the largest frame, when a frame needs more. */
const READ_BUFFER_BYTES = 128 * 1024;
/** The read buffer grows up to this while reads keep filling it (a fast peer). */
const MAX_READ_BUFFER_BYTES = 1024 * 1024;
/** The write buffer of a new connection; it grows while a write is in flight. */
const WRITE_BUFFER_BYTES = 32 * 1024;
/** A keep-alive goes out after this long without writing (peers drop a connection silent for 2 minutes). */
export const KEEPALIVE_MS = 90_000;

/** A connection failed or timed out before the handshake completed. */
export class ConnectError extends Error {
  override readonly name = "ConnectError";
  /** Makes the error. */
  constructor(readonly address: string, detail: string, options?: ErrorOptions) {
    super(`Cannot connect to ${address}: ${detail}`, options);
  }
}

/**
 * Whether `e` is a peer's or the network's doing (drop that connection quietly), rather than a bug of ours: a
 * malformed message, a failed connection, or an OS error on the socket.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(isPeerFault(new Deno.errors.ConnectionReset("reset")), true);
 * eq(isPeerFault(new TypeError("x is undefined")), false);
 * ```
 */
export function isPeerFault(e: unknown): boolean {
  if (e instanceof WireError || e instanceof BitfieldError || e instanceof ConnectError) return true;
  const d = Deno.errors;
  if (
    e instanceof d.BadResource || e instanceof d.Interrupted || e instanceof d.ConnectionReset ||
    e instanceof d.ConnectionAborted || e instanceof d.BrokenPipe || e instanceof d.NotConnected ||
    e instanceof d.TimedOut || e instanceof d.UnexpectedEof || e instanceof d.ConnectionRefused ||
    e instanceof d.AddrNotAvailable || e instanceof d.NetworkUnreachable
  ) return true;
  // other OS errors on a socket (e.g. EMFILE, EHOSTUNREACH) carry an errno name
  const code = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined;
  return typeof code === "string" && /^E[A-Z]+$/.test(code);
}

/** Opens a TCP connection, giving up after `timeoutMs`. */
export async function connectTcp(addr: PeerAddress, timeoutMs: number): Promise<Deno.TcpConn> {
  let timer: TimerHandle | undefined;
  const pending = Deno.connect({ hostname: addr.host, port: addr.port, transport: "tcp" });
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimer(() => reject(new ConnectError(`${addr.host}:${addr.port}`, "timed out")), timeoutMs);
    });
    const conn = await Promise.race([pending, timeout]);
    conn.setNoDelay(true);
    return conn;
  } catch (e) {
    pending.then((c) => c.close(), () => {});
    if (e instanceof ConnectError) throw e;
    throw new ConnectError(`${addr.host}:${addr.port}`, e instanceof Error ? e.message : String(e), { cause: e });
  } finally {
    clearTimer(timer);
  }
}

/** The peer's handshake and any bytes that followed it in the same reads. */
export interface HandshakeExchange {
  readonly theirs: Handshake;
  readonly leftover: Uint8Array;
}

/**
 * Reads the peer's handshake (bounded by `timeoutMs`). With `ours`, writes ours first (outgoing connections);
 * without, the caller writes after deciding from theirs (incoming: route by info-hash).
 * @throws {WireError} on a malformed handshake; {@linkcode ConnectError} on time-out or a closed connection.
 */
export async function readHandshake(
  conn: Deno.Conn,
  timeoutMs: number,
  ours?: Handshake,
  initial: Uint8Array = new Uint8Array(0),
): Promise<HandshakeExchange> {
  if (ours) await writeAll(conn, encodeHandshake(ours));
  return await readUntil(conn, timeoutMs, initial, (buf) => {
    const r = decodeHandshake(buf, 0);
    return r.kind === "handshake" ? { theirs: copyHandshake(r.handshake), leftover: buf.slice(r.next) } : null;
  });
}

/**
 * Reads from `conn`, after the bytes in `initial`, until `parse` makes something of what arrived (it returns null
 * while it needs more), within `timeoutMs` and `maxBytes`.
 * @throws {WireError} `too-long` past `maxBytes`, or whatever `parse` throws; {@linkcode ConnectError} on time-out or
 *   a closed connection.
 */
export async function readUntil<T>(
  conn: Deno.Conn,
  timeoutMs: number,
  initial: Uint8Array,
  parse: (buf: Uint8Array) => T | null,
  maxBytes: number = HANDSHAKE_BYTES + 4096,
): Promise<T> {
  const buf = new Uint8Array(Math.max(maxBytes, initial.length));
  buf.set(initial);
  let len = initial.length;
  const timer = setTimer(() => {
    try {
      conn.close();
    } catch { /* already closed */ }
  }, timeoutMs);
  try {
    for (;;) {
      if (len > 0) {
        const r = parse(buf.subarray(0, len));
        if (r !== null) return r;
      }
      if (len >= buf.length) throw new WireError("too-long", len, `nothing usable in the first ${len} bytes`);
      let n: number | null;
      try {
        n = await conn.read(buf.subarray(len));
      } catch (e) {
        throw new ConnectError(addrOf(conn), "closed during the handshake", { cause: e });
      }
      if (n === null) throw new ConnectError(addrOf(conn), "closed during the handshake");
      len += n;
    }
  } finally {
    clearTimer(timer);
  }
}

function copyHandshake(h: Handshake): Handshake {
  return { reserved: h.reserved.slice(), infoHash: h.infoHash.slice(), peerId: h.peerId.slice() };
}

function addrOf(conn: Deno.Conn): string {
  const a = conn.remoteAddr as Deno.NetAddr;
  return formatAddress({ host: a.hostname, port: a.port });
}

/** Writes all of `data`, looping over partial writes. */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** What a {@linkcode PeerConn} reports while reading. */
export interface PeerConnHandler {
  /** A message; views inside it (a `piece` message's block included) are valid only during the call. */
  onMessage(m: Message): void;
  /** The write queue emptied (a chance to queue more uploads). */
  onDrain(): void;
}

/** An established peer connection (after the handshake). */
export class PeerConn {
  #conn: Deno.Conn;
  #rbuf = new Uint8Array(READ_BUFFER_BYTES);
  #wbuf = new Uint8Array(WRITE_BUFFER_BYTES);
  #wlen = 0;
  #spare = new Uint8Array(WRITE_BUFFER_BYTES);
  #writing = false;
  #closed = false;
  #handler: PeerConnHandler | null = null;
  /** Bytes of payload (block data) written to the socket. */
  blockBytesWritten = 0;
  /** When the last bytes arrived (ms, `performance.now()`), for the idle time-out. */
  lastReadAt: number = performance.now();
  /** When a write last started (queued messages go out in the same turn), for keep-alives. */
  lastWriteAt: number = performance.now();
  /** Why the write side failed, if it did. */
  writeError: unknown = null;

  /** Wraps a connected socket. */
  constructor(conn: Deno.Conn, readonly address: PeerAddress) {
    this.#conn = conn;
  }

  /** Bytes queued but not yet written. */
  get backlog(): number {
    return this.#wlen;
  }

  /** Whether the connection is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  #reserve(n: number): number {
    if (this.#wlen + n > this.#wbuf.length) {
      let size = this.#wbuf.length * 2;
      while (size < this.#wlen + n) size *= 2;
      const b = new Uint8Array(size);
      b.set(this.#wbuf.subarray(0, this.#wlen));
      this.#wbuf = b;
    }
    const at = this.#wlen;
    this.#wlen += n;
    return at;
  }

  /** Queues a message. */
  send(m: Message): void {
    if (this.#closed) return;
    const at = this.#reserve(messageFrameLength(m)); // first: it may replace the buffer
    encodeMessageInto(m, this.#wbuf, at);
    this.#kick();
  }

  /** Queues bytes as they are (our handshake on an incoming connection). */
  sendRaw(bytes: Uint8Array): void {
    if (this.#closed) return;
    const at = this.#reserve(bytes.length); // first: it may replace the buffer
    this.#wbuf.set(bytes, at);
    this.#kick();
  }

  /** Queues a `piece` message with `block` as its data (copied into the write buffer). */
  sendPiece(index: number, begin: number, block: Uint8Array): void {
    if (this.#closed) return;
    const at = this.#reserve(PIECE_HEADER_BYTES + block.length);
    writePieceHeader(this.#wbuf, at, index, begin, block.length);
    this.#wbuf.set(block, at + PIECE_HEADER_BYTES);
    this.blockBytesWritten += block.length;
    this.#kick();
  }

  #kick(): void {
    if (!this.#writing) {
      this.#writing = true;
      queueMicrotask(() => this.#flush());
    }
  }

  async #flush(): Promise<void> {
    try {
      while (this.#wlen > 0 && !this.#closed) {
        // swap buffers: new messages go into the spare while this one is written
        const out = this.#wbuf;
        const len = this.#wlen;
        this.#wbuf = this.#spare.length >= WRITE_BUFFER_BYTES ? this.#spare : new Uint8Array(WRITE_BUFFER_BYTES);
        this.#wlen = 0;
        this.lastWriteAt = performance.now(); // once per write, not per message
        await writeAll(this.#conn, out.subarray(0, len));
        this.#spare = out.length <= 4 * 1024 * 1024 ? out : new Uint8Array(WRITE_BUFFER_BYTES);
        if (this.#wlen === 0) this.#handler?.onDrain();
      }
    } catch (e) {
      this.writeError = e;
      this.close();
    } finally {
      this.#writing = false;
    }
  }

  /**
   * Gives the read loop of {@linkcode PeerConn.run} a new handler from the next message on: the connection changes
   * owner (a magnet's metadata fetch hands the peer that sent the metadata to the download).
   */
  handOver(handler: PeerConnHandler): void {
    this.#handler = handler;
  }

  /**
   * Reads until the connection closes, feeding `handler` (or the one {@linkcode PeerConn.handOver} gave it).
   * `initial` holds bytes that arrived with the handshake. Resolves on a clean close (by either side).
   * @throws {WireError} when the peer sends something malformed (the connection is closed first).
   */
  async run(handler: PeerConnHandler, initial: Uint8Array = new Uint8Array(0)): Promise<void> {
    this.#handler = handler;
    let buf = this.#rbuf;
    if (initial.length > buf.length) throw new WireError("too-long", 0, "handshake followed by too many bytes");
    buf.set(initial);
    let start = 0;
    let end = initial.length;
    try {
      for (;;) {
        // cut every whole frame out of [start, end), each decoded by the wire codec (blocks stay views of buf)
        const got = buf.subarray(0, end); // one view per read, not per frame
        while (!this.#closed && end - start >= 4) {
          const f = readFrame(got, start); // throws the typed error past MAX_MESSAGE_BYTES
          if (f.kind === "need") {
            const whole = end - start + f.bytes;
            if (whole > buf.length) {
              // a frame larger than the buffer: grow it (bounded by MAX_MESSAGE_BYTES in readFrame)
              const bigger = new Uint8Array(Math.max(whole, buf.length * 2));
              bigger.set(buf.subarray(start, end));
              end -= start;
              start = 0;
              buf = this.#rbuf = bigger;
            }
            break;
          }
          start = f.next;
          (this.#handler as PeerConnHandler).onMessage(decodeMessage(f.payload, 0));
        }
        if (this.#closed) return;
        if (start === end) {
          start = end = 0;
        } else if (start > 0 && buf.length - end < 16 * 1024) {
          buf.copyWithin(0, start, end);
          end -= start;
          start = 0;
        }
        // a peer that sends faster than this loop eats would otherwise keep timers and the writer's replies waiting
        const turn = maybeYield();
        if (turn) {
          await turn;
          if (this.#closed) return;
        }
        let n: number | null;
        try {
          n = await this.#conn.read(buf.subarray(end));
        } catch (e) {
          if (this.#closed) return;
          throw new ConnectError(formatAddress(this.address), "connection lost", { cause: e });
        }
        if (n === null) return;
        if (end + n === buf.length && buf.length < MAX_READ_BUFFER_BYTES && start === 0) {
          // a read filled the buffer: the peer is fast, so read in larger gulps (fewer calls per byte)
          const bigger = new Uint8Array(buf.length * 2);
          bigger.set(buf.subarray(0, end + n));
          buf = this.#rbuf = bigger;
        }
        end += n;
        this.lastReadAt = performance.now();
      }
    } finally {
      this.close();
    }
  }

  /** Closes the socket; pending writes are dropped. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}
