/**
 * Fake peers for session tests: a message-level view of one loopback TCP connection ({@linkcode Wire}), a listener
 * that runs a handler per accepted connection ({@linkcode FakePeer}), and a configurable seeder behaviour
 * ({@linkcode seeder}) that good and bad peers are made from. Every wait is bounded; `close()` ends everything.
 * @module
 */
import { Bitfield } from "../../lib/bitfield.ts";
import { BLOCK_BYTES } from "../../lib/limits.ts";
import type { Metainfo } from "../../lib/metainfo.ts";
import { readFrame } from "../../lib/wire/frame.ts";
import { decodeHandshake, encodeHandshake, type Handshake, reservedBits } from "../../lib/wire/handshake.ts";
import { decodeMessage, encodeMessage, type Message } from "../../lib/wire/messages.ts";

/** A block request as the fake peer saw it. */
export interface Req {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
}

/** One connection, read into a queue of decoded messages. */
export class Wire {
  readonly conn: Deno.Conn;
  #buf = new Uint8Array(0);
  #queue: Message[] = [];
  #eof = false;
  readonly #wakers = new Set<() => void>();
  #handshake: Handshake | null = null;
  readonly #pump: Promise<void>;
  /** Why reading stopped, when it was not a clean close (e.g. a frame we could not decode). */
  readError: unknown = null;

  constructor(conn: Deno.Conn, readonly expectHandshake = true) {
    this.conn = conn;
    this.#pump = this.#run();
  }

  /** Opens a connection to `port` on 127.0.0.1. */
  static async connect(port: number): Promise<Wire> {
    return new Wire(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async #run(): Promise<void> {
    const chunk = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.conn.read(chunk);
        if (n === null) return;
        const next = new Uint8Array(this.#buf.length + n);
        next.set(this.#buf);
        next.set(chunk.subarray(0, n), this.#buf.length);
        this.#buf = next;
        this.#parse();
        for (const w of this.#wakers) w();
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted)) this.readError = e;
    } finally {
      this.#eof = true;
      for (const w of this.#wakers) w();
    }
  }

  #parse(): void {
    let off = 0;
    if (this.expectHandshake && this.#handshake === null) {
      const h = decodeHandshake(this.#buf, 0);
      if (h.kind === "need") return;
      this.#handshake = h.handshake;
      off = h.next;
    }
    for (;;) {
      const f = readFrame(this.#buf, off);
      if (f.kind === "need") break;
      this.#queue.push(decodeMessage(f.payload.slice(), 0));
      off = f.next;
    }
    this.#buf = this.#buf.slice(off);
  }

  async #wait(timeoutMs: number, ready: () => boolean): Promise<boolean> {
    const until = performance.now() + timeoutMs;
    while (!ready() && !this.#eof) {
      const left = until - performance.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let wake = () => {};
      await new Promise<void>((resolve) => {
        wake = resolve;
        this.#wakers.add(wake);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wakers.delete(wake);
    }
    return ready();
  }

  /** The other side's handshake, or null if it did not come within `timeoutMs`. */
  async handshake(timeoutMs = 5000): Promise<Handshake | null> {
    await this.#wait(timeoutMs, () => this.#handshake !== null);
    return this.#handshake;
  }

  /** The next message; `null` when the connection closed, `"timeout"` when nothing came in time. */
  async next(timeoutMs = 5000): Promise<Message | null | "timeout"> {
    if (await this.#wait(timeoutMs, () => this.#queue.length > 0)) return this.#queue.shift() ?? null;
    return this.#eof ? null : "timeout";
  }

  /** Reads until a message of `type` (others are passed to `seen`), or null on close or time-out. */
  async until<T extends Message["type"]>(
    type: T,
    timeoutMs = 5000,
    seen?: (m: Message) => void,
  ): Promise<Extract<Message, { type: T }> | null> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      const m = await this.next(Math.max(0, until - performance.now()));
      if (m === null || m === "timeout") return null;
      if (m.type === type) return m as Extract<Message, { type: T }>;
      seen?.(m);
    }
  }

  /** Whether the other side has closed the connection. */
  get closed(): boolean {
    return this.#eof;
  }

  /** Waits until the other side closes; false if it is still open after `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    return await this.#wait(timeoutMs, () => false) || this.#eof;
  }

  /** Writes a message; false if the connection is gone. */
  async send(m: Message): Promise<boolean> {
    return await this.sendRaw(encodeMessage(m));
  }

  /** Writes bytes as they are; false if the connection is gone. */
  async sendRaw(bytes: Uint8Array): Promise<boolean> {
    try {
      let off = 0;
      while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the connection and waits for the reader to stop. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch { /* already closed */ }
    await this.#pump;
  }
}

/** A listening fake peer on 127.0.0.1 that runs `handler` for every connection it accepts. */
export class FakePeer {
  readonly #listener: Deno.TcpListener;
  readonly #wires = new Set<Wire>();
  readonly #tasks: Promise<void>[] = [];
  readonly #loop: Promise<void>;
  /** Connections accepted so far. */
  accepted = 0;
  /** Errors thrown by handlers (other than the connection going away). */
  readonly errors: unknown[] = [];

  constructor(readonly handler: (w: Wire) => Promise<void>) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#loop = this.#accept();
  }

  /** The bound port. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** `127.0.0.1:port`, as session events name peers. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      this.accepted++;
      const w = new Wire(conn);
      this.#wires.add(w);
      this.#tasks.push(
        this.handler(w).catch((e) => {
          this.errors.push(e);
        }).finally(() => w.close()),
      );
    }
  }

  /** Stops listening, closes every connection and waits for the handlers. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch { /* closed */ }
    await this.#loop;
    for (const w of this.#wires) await w.close();
    await Promise.all(this.#tasks);
  }
}

/** A request as logged by a seeder, with whether it was choking us at the time. */
export type LoggedReq = Req & { readonly choked: boolean };

/** What a seeder does with one request. */
export type Answer = "serve" | "reject" | "ignore" | "corrupt";

/** How a {@linkcode seeder} behaves. */
export interface SeederOptions {
  readonly meta: Metainfo;
  readonly payload: Uint8Array;
  /** Set the Fast extension bit (BEP 6). */
  readonly fast?: boolean;
  /** Set the extension protocol bit (BEP 10); we never send an extended handshake, which is allowed. */
  readonly extended?: boolean;
  /** Announce pieces with have-all (needs `fast`) instead of a bitfield. */
  readonly haveAll?: boolean;
  /** The pieces to announce (default all); `null` announces nothing (e.g. to send a bad announcement instead). */
  readonly has?: Bitfield | null;
  /** Pieces to send allowed-fast for. */
  readonly allowedFast?: readonly number[];
  /** Unchoke an interested peer only after this settles (default at once). */
  readonly gate?: Promise<unknown>;
  /** Whether to unchoke at all (default true). */
  readonly unchoke?: boolean;
  /** Decides each request (`n` counts requests on this connection, from 0); default serve. */
  readonly answer?: (r: Req, n: number) => Answer;
  /** Runs right after our handshake and piece announcement, e.g. to send garbage; return false to hang up. */
  readonly afterOpening?: (w: Wire) => Promise<boolean>;
  /** Every request received, with whether we were choking at the time. */
  readonly log?: LoggedReq[];
  /** Per-message hook, e.g. to count rejects or cancels. */
  readonly onMessage?: (m: Message) => void;
}

/** The bytes of a block of the payload. */
export function blockOf(o: { meta: Metainfo; payload: Uint8Array }, r: Req): Uint8Array {
  const at = r.index * o.meta.pieceLength + r.begin;
  return o.payload.slice(at, at + r.length);
}

/** A seeder handler: handshake, announce, unchoke the interested, answer requests as `answer` says. */
export function seeder(o: SeederOptions): (w: Wire) => Promise<void> {
  return async (w) => {
    const theirs = await w.handshake(5000);
    if (!theirs) return;
    const peerId = new TextEncoder().encode("-FK0001-" + "x".repeat(12));
    const ours = { reserved: reservedBits({ fast: o.fast, extended: o.extended }), infoHash: o.meta.infoHash, peerId };
    if (!await w.sendRaw(encodeHandshake(ours))) return;
    if (o.haveAll) await w.send({ type: "have-all" });
    else if (o.has !== null) {
      await w.send({ type: "bitfield", bits: (o.has ?? Bitfield.full(o.meta.pieceCount)).bytes });
    }
    for (const index of o.allowedFast ?? []) await w.send({ type: "allowed-fast", index });
    if (o.afterOpening && !await o.afterOpening(w)) return;
    let choking = true;
    let n = 0;
    const allowed = new Set(o.allowedFast ?? []);
    for (;;) {
      const m = await w.next(30_000);
      if (m === null || m === "timeout") return;
      o.onMessage?.(m);
      if (m.type === "interested" && choking && o.unchoke !== false) {
        const open = async () => {
          if (choking && !w.closed) {
            choking = false;
            await w.send({ type: "unchoke" });
          }
        };
        if (o.gate) o.gate.then(open, () => {});
        else await open();
      } else if (m.type === "request") {
        o.log?.push({ index: m.index, begin: m.begin, length: m.length, choked: choking });
        const answer = choking && !allowed.has(m.index)
          ? (o.fast ? "reject" : "ignore")
          : o.answer?.(m, n++) ?? "serve";
        if (answer === "serve" || answer === "corrupt") {
          const block = blockOf(o, m);
          if (answer === "corrupt") block[block.length >> 1] ^= 0xff;
          await w.send({ type: "piece", index: m.index, begin: m.begin, block });
        } else if (answer === "reject") {
          await w.send({ type: "reject", index: m.index, begin: m.begin, length: m.length });
        }
      }
    }
  };
}

/** Every block request of a piece range, in order. */
export function requestsFor(meta: Metainfo, pieces: Iterable<number>): Req[] {
  const out: Req[] = [];
  for (const i of pieces) {
    const len = i === meta.pieceCount - 1 ? meta.totalLength - i * meta.pieceLength : meta.pieceLength;
    for (let b = 0; b < len; b += BLOCK_BYTES) out.push({ index: i, begin: b, length: Math.min(BLOCK_BYTES, len - b) });
  }
  return out;
}

/** A promise with its resolver, for gates. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}
