/**
 * Range requests for web seeds: over connections of our own for plain `http:` URLs (kept alive and reused, the body
 * read straight into the caller's buffer a megabyte at a time), else through `fetch()` (https, URL credentials, a
 * proxy in the environment, an answer not framed by `Content-Length`). `fetch()` hands its body over in reads of
 * ~96 KB with buffers and promises of its own, which made the main thread the bottleneck of a fast web seed. The
 * request's and the head's bytes are `webseed/http1.ts`'s pure functions.
 * @module
 */
import { bodyLength, encodeRangeRequest, HttpError, keepsAlive, parseResponseHead } from "../webseed/http1.ts";
import { rangeHeader } from "../webseed/plan.ts";
import { mostPublic } from "../webseed/redirect.ts";
import { bareHost, checkAddresses, isIpLiteral, resolveAll } from "../resolve.ts";
import { writeAll } from "./peer_conn.ts";

/** A range response being read, from a connection of ours or from `fetch()`. */
export interface RangeResponse {
  readonly status: number;
  /** The IP address the answer came from, when known (over a connection of ours; `fetch()` does not tell). */
  readonly address: string | null;
  /** A header field's value (case-insensitive name), or null. */
  header(name: string): string | null;
  /**
   * Reads body bytes into `buf`. Resolves to a view of the bytes read, possibly of a new buffer that took `buf`'s
   * memory (use its buffer for the next read), or null at the body's end.
   * @throws when the connection is lost mid-body.
   */
  read(buf: Uint8Array): Promise<Uint8Array | null>;
  /** Done with the response; the rest of the body, if any, is not wanted. */
  close(): void;
}

/** How much of a body one read takes at most: the size of the read buffers {@linkcode RangeClient.takeBuffer} lends. */
export const BODY_READ_BYTES = 1024 * 1024;

/** Read buffers kept for reuse (one per run in flight is enough). */
const MAX_SPARE_BUFFERS = 4;

/** Idle connections kept per origin. */
const MAX_IDLE_PER_ORIGIN = 4;

/** Idle connections kept in all (a seed may redirect each file to another origin): past it the oldest is closed. */
const MAX_IDLE = 8;

/** The first read of an answer (its head, at most `MAX_HEAD_BYTES`, and the start of its body). */
const HEAD_READ_BYTES = 64 * 1024;

/** Environment variables that send `fetch()` through a proxy: a connection of ours would bypass it. */
const PROXY_VARIABLES = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

/**
 * A request refused because the host name led to an address the redirect chain may not reach (a public server's
 * redirect to a name that resolves to 127.0.0.1 or a LAN address): `webseed/redirect.ts` judges names by name alone.
 */
export class AddressRefused extends Error {
  override readonly name = "AddressRefused";
  constructor(readonly host: string, readonly address: string | null, why?: string) {
    super(why ?? `${host} resolves to ${address}, which a redirect from a more public server may not reach`);
  }
}

/** Whether the request may go to `address` (an IP the host name resolved or connected to). */
export type AddressCheck = (address: string) => boolean;

/** Requests ranges over kept-alive HTTP/1.1 connections of its own. Call {@linkcode RangeClient.close} when done. */
export class RangeClient {
  readonly #idle = new Map<string, Deno.Conn[]>();
  readonly #spare: Uint8Array[] = [];
  readonly #direct: boolean;
  #closed = false;

  /** A client; without `direct`, or when the environment names a proxy, every request goes through `fetch()`. */
  constructor(direct = true) {
    this.#direct = direct && !proxyConfigured();
  }

  /**
   * Requests bytes `[start, end]` of `url` (`redirect: "manual"`: a redirect is answered as it is). With
   * `mayReach` (after a redirect), the address is checked before anything is sent: over a connection of ours, the
   * address it connected to (an answer not framed by `Content-Length` is then refused, not asked again through
   * `fetch()`, which would look the name up afresh); through `fetch()`, which does not tell, every address the host
   * name resolves to now (a name that resolves to nothing here is refused).
   * @throws what connecting, writing or reading throws, {@linkcode HttpError} for a malformed answer,
   *   {@linkcode AddressRefused} when `mayReach` refuses the address.
   */
  async request(
    url: string,
    start: number,
    end: number,
    signal: AbortSignal,
    mayReach?: AddressCheck,
  ): Promise<RangeResponse> {
    const u = new URL(url);
    if (this.#direct && !this.#closed && u.protocol === "http:" && u.username === "" && u.password === "") {
      const r = await this.#direct1(u, start, end, signal, mayReach);
      if (r !== null) return r;
      // fetch() would look the name up again, and a rebinding name could lead it elsewhere than what was checked
      if (mayReach) {
        throw new AddressRefused(u.hostname, null, `${u.host} answered without Content-Length after a redirect`);
      }
    }
    if (mayReach) await checkResolved(bareHost(u.hostname), mayReach, signal);
    return await fetchRange(url, start, end, signal);
  }

  /**
   * The most public address `host` resolves to now (an IP literal is itself), or null when it resolves to nothing:
   * where a `fetch()` answer, which does not say where it came from, most likely came from.
   */
  async addressOf(host: string, signal: AbortSignal): Promise<string | null> {
    const h = bareHost(host);
    return isIpLiteral(h) ? h : mostPublic(await resolveAll(h, signal));
  }

  /** A body read buffer of {@linkcode BODY_READ_BYTES}, reused across runs (a fresh megabyte per run was garbage). */
  takeBuffer(): Uint8Array {
    return this.#spare.pop() ?? new Uint8Array(BODY_READ_BYTES);
  }

  /** Returns a read buffer for reuse (one of another size, or detached, is let go). */
  giveBuffer(buf: Uint8Array): void {
    if (buf.buffer.byteLength === BODY_READ_BYTES && this.#spare.length < MAX_SPARE_BUFFERS) {
      this.#spare.push(new Uint8Array(buf.buffer as ArrayBuffer));
    }
  }

  /** Closes the idle connections; later requests go through `fetch()`. */
  close(): void {
    this.#closed = true;
    for (const conns of this.#idle.values()) for (const c of conns) closeQuietly(c);
    this.#idle.clear();
  }

  /** The request over a connection of ours; null when the answer is not one we read (then `fetch()` asks again). */
  async #direct1(
    u: URL,
    start: number,
    end: number,
    signal: AbortSignal,
    mayReach: AddressCheck | undefined,
  ): Promise<RangeResponse | null> {
    const origin = `${u.hostname}:${u.port || "80"}`;
    const request = encodeRangeRequest(u, start, end);
    for (let attempt = 0; attempt < 2; attempt++) {
      signal.throwIfAborted();
      const pooled = this.#takeIdle(origin);
      const conn = pooled ??
        await Deno.connect({ hostname: bareHost(u.hostname), port: Number(u.port || 80), signal });
      const onAbort = () => closeQuietly(conn);
      signal.addEventListener("abort", onAbort, { once: true });
      let handedOver = false;
      let n = 0;
      try {
        if (signal.aborted) throw signal.reason;
        const at = (conn.remoteAddr as Deno.NetAddr).hostname;
        if (mayReach && !mayReach(at)) throw new AddressRefused(u.hostname, at);
        await writeAll(conn, request);
        const buf = new Uint8Array(HEAD_READ_BYTES);
        let head = null;
        while (head === null) {
          // the buffer outsizes MAX_HEAD_BYTES, past which parseResponseHead throws: a read always has room
          const r = await conn.read(buf.subarray(n));
          if (r === null) {
            if (pooled && n === 0) break; // a kept-alive connection the server had closed: once more on a new one
            throw new HttpError("The server closed the connection before its answer's head");
          }
          const searched = n;
          n += r;
          head = parseResponseHead(buf.subarray(0, n), searched);
        }
        if (head === null) continue;
        const length = bodyLength(head.headers);
        if (length === null) return null; // chunked or unframed: fetch() reads those
        handedOver = true;
        return this.#response(
          origin,
          conn,
          head.status,
          head.headers,
          keepsAlive(head.headers, head.minor),
          buf.subarray(head.headLength, n),
          length,
          () => signal.removeEventListener("abort", onAbort),
          signal,
        );
      } catch (e) {
        if (signal.aborted) throw signal.reason;
        if (e instanceof AddressRefused) throw e;
        if (pooled && n === 0 && !(e instanceof HttpError)) continue; // reset while idle: once more on a new one
        throw e;
      } finally {
        if (!handedOver) {
          signal.removeEventListener("abort", onAbort);
          closeQuietly(conn);
        }
      }
    }
    return null;
  }

  /** An idle connection to `origin`, if one is kept (the entry goes with its last connection). */
  #takeIdle(origin: string): Deno.Conn | undefined {
    const idle = this.#idle.get(origin);
    const conn = idle?.pop();
    if (idle?.length === 0) this.#idle.delete(origin);
    return conn;
  }

  /** Keeps `conn` for reuse, within the per-origin and overall bounds (past the overall one, the oldest goes). */
  #keepIdle(origin: string, conn: Deno.Conn): void {
    const idle = this.#idle.get(origin) ?? [];
    if (idle.length >= MAX_IDLE_PER_ORIGIN) {
      closeQuietly(conn);
      return;
    }
    let total = 0;
    for (const list of this.#idle.values()) total += list.length;
    if (total >= MAX_IDLE) {
      const [oldest, list] = this.#idle.entries().next().value as [string, Deno.Conn[]];
      closeQuietly(list.shift()!);
      if (list.length === 0) this.#idle.delete(oldest);
    }
    this.#idle.delete(origin); // re-inserted last: the map is in order of last use
    this.#idle.set(origin, [...idle, conn]);
  }

  #response(
    origin: string,
    conn: Deno.Conn,
    status: number,
    headers: ReadonlyMap<string, string>,
    alive: boolean,
    leftover: Uint8Array,
    length: number,
    unlisten: () => void,
    signal: AbortSignal,
  ): RangeResponse {
    let remaining = length;
    let left = leftover.subarray(0, Math.min(leftover.length, length));
    const spare = leftover.length > length; // the server sent more than it framed: never reuse the connection
    let closed = false;
    return {
      status,
      address: (conn.remoteAddr as Deno.NetAddr).hostname,
      header: (name) => headers.get(name.toLowerCase()) ?? null,
      read: async (buf) => {
        if (remaining === 0 || closed) return null;
        if (left.length > 0) {
          const k = Math.min(left.length, buf.length);
          buf.set(left.subarray(0, k));
          left = left.subarray(k);
          remaining -= k;
          return buf.subarray(0, k);
        }
        const r = await conn.read(buf.subarray(0, Math.min(buf.length, remaining)));
        if (r === null) throw new HttpError("The server closed the connection mid-body");
        remaining -= r;
        return buf.subarray(0, r);
      },
      close: () => {
        if (closed) return;
        closed = true;
        unlisten();
        if (remaining === 0 && !spare && alive && !signal.aborted && !this.#closed) this.#keepIdle(origin, conn);
        else closeQuietly(conn);
      },
    };
  }
}

/** The range through `fetch()`, its body read into the caller's buffers (a BYOB reader when it is a byte stream). */
async function fetchRange(url: string, start: number, end: number, signal: AbortSignal): Promise<RangeResponse> {
  const res = await fetch(url, {
    headers: { range: rangeHeader({ rangeStart: start, rangeEnd: end }), "accept-encoding": "identity" },
    redirect: "manual",
    signal,
  });
  const body = res.body;
  let byob: ReadableStreamBYOBReader | null = null;
  let plain: ReadableStreamDefaultReader<Uint8Array> | null = null;
  const reader = () => {
    if (byob === null && plain === null && body !== null) {
      try {
        byob = body.getReader({ mode: "byob" });
      } catch {
        plain = body.getReader();
      }
    }
  };
  return {
    status: res.status,
    address: null,
    header: (name) => res.headers.get(name),
    read: async (buf) => {
      reader();
      const r = byob !== null
        ? await (byob as ReadableStreamBYOBReader).read(buf)
        : plain !== null
        ? await (plain as ReadableStreamDefaultReader<Uint8Array>).read()
        : { done: true as const, value: undefined };
      return r.done || r.value === undefined ? null : r.value;
    },
    close: () => {
      const r: ReadableStreamBYOBReader | ReadableStreamDefaultReader<Uint8Array> | null = byob ?? plain;
      if (r !== null) r.cancel().catch(() => {});
      else body?.cancel().catch(() => {});
    },
  };
}

/** Whether the environment sends `fetch()` through a proxy (or cannot be read, so that it might). */
function proxyConfigured(): boolean {
  try {
    return PROXY_VARIABLES.some((v) => (Deno.env.get(v) ?? "") !== "");
  } catch {
    return true;
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/**
 * Refuses `host` when any address it resolves to now is one `mayReach` refuses, or when it resolves to nothing: after
 * a redirect, a name that cannot be checked is not asked. An IP literal is checked as it is.
 * @throws {AddressRefused}
 */
async function checkResolved(host: string, mayReach: AddressCheck, signal: AbortSignal): Promise<void> {
  const v = await checkAddresses(host, mayReach, signal);
  if (v.ok) return;
  throw v.address === null
    ? new AddressRefused(host, null, `${host} does not resolve here, so it cannot be checked`)
    : new AddressRefused(host, v.address);
}
