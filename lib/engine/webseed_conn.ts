/**
 * The HTTP side of a web seed (BEP 19): fetches one planned run of pieces — ranged `GET`s, one per file segment, in
 * payload order, redirects followed by the redirect policy, padding filled with zeros — and cuts the bytes into the
 * 16 KiB blocks the swarm takes, exactly as if a peer had sent them. The only place that talks HTTP to web seeds.
 *
 * Every verdict on an answer is the pure `judgeResponse` (`webseed/response.ts`); this module only moves bytes.
 * @module
 */
import { BLOCK_BYTES } from "../limits.ts";
import { followRedirect, mayConnect, type RedirectChain, startChain } from "../webseed/redirect.ts";
import { judgeResponse } from "../webseed/response.ts";
import type { FileMissingReason } from "../webseed/seed_state.ts";
import type { PlanGeometry, Segment } from "../webseed/plan.ts";
import { REQUEST_TIMEOUT_MS } from "./requests.ts";
import { maybeYield } from "../turns.ts";
import { AddressRefused, RangeClient, type RangeResponse } from "./webseed_http.ts";
import { clearTimer, setRepeat } from "../timers.ts";

/** How a run ended. Blocks delivered before the end are kept either way. */
export type RunOutcome =
  | { readonly kind: "ok" }
  /** The answer was short: the rest is to be asked again. */
  | { readonly kind: "short" }
  | {
    readonly kind: "missing";
    readonly fileIndex: number;
    readonly reason: FileMissingReason;
    readonly status: number;
  }
  | { readonly kind: "retry"; readonly afterMs: number | null; readonly status: number }
  | { readonly kind: "failed"; readonly reason: string }
  | { readonly kind: "aborted" };

/** Receives each whole block; `data` is valid only during the call. */
export type BlockSink = (piece: number, begin: number, data: Uint8Array) => void;

/** A run that receives nothing (no answer, no body bytes) for this long ends as failed. */
export const RUN_IDLE_TIMEOUT_MS = REQUEST_TIMEOUT_MS;

/**
 * Fetches the segments of one run (they tile whole pieces, in payload order) and hands `onBlock` every block as it
 * completes. Resolves with how the run ended; never rejects for the server's faults (only for a bug). A server that
 * sends nothing for `idleTimeoutMs` ends the run as failed: the seed-wide time-out alone would let one run drip
 * forever while the seed's other runs deliver.
 */
export async function fetchRun(
  geometry: PlanGeometry,
  segments: readonly Segment[],
  onBlock: BlockSink,
  signal: AbortSignal,
  client: RangeClient = new RangeClient(false),
  idleTimeoutMs: number = RUN_IDLE_TIMEOUT_MS,
): Promise<RunOutcome> {
  const idle = new AbortController();
  let last = performance.now();
  const watch = setRepeat(() => {
    if (performance.now() - last >= idleTimeoutMs) idle.abort();
  }, Math.min(1000, idleTimeoutMs));
  try {
    const both = AbortSignal.any([signal, idle.signal]);
    const end = await runSegments(geometry, segments, onBlock, both, client, () => last = performance.now());
    if (end.kind === "aborted" && !signal.aborted && idle.signal.aborted) {
      return { kind: "failed", reason: `the web seed sent nothing for ${idleTimeoutMs / 1000} s` };
    }
    return end;
  } finally {
    clearTimer(watch);
  }
}

/** {@linkcode fetchRun}'s work; `touch` is called whenever something arrives. */
async function runSegments(
  geometry: PlanGeometry,
  segments: readonly Segment[],
  onBlock: BlockSink,
  signal: AbortSignal,
  client: RangeClient,
  touch: () => void,
): Promise<RunOutcome> {
  const cutter = new BlockCutter(geometry, onBlock);
  for (const seg of segments) {
    if (signal.aborted) return { kind: "aborted" };
    cutter.seek(seg.payloadOffset);
    if (seg.kind === "zeros") {
      cutter.zeros(seg.length);
      continue;
    }
    const fileLength = geometry.files[seg.fileIndex].length;
    let chain: RedirectChain = startChain(seg.url);
    let sendAuthorization = true;
    for (;;) {
      let res: RangeResponse;
      try {
        const url = sendAuthorization ? chain.url : withoutCredentials(chain.url);
        // after a redirect, the address a name leads to must be no more local than the chain may reach
        const reach = chain.hops > 0 ? ((a: string) => mayConnect(chain, a)) : undefined;
        res = await client.request(url, seg.rangeStart, seg.rangeEnd, signal, reach);
        touch();
      } catch (e) {
        if (signal.aborted) return { kind: "aborted" };
        if (e instanceof AddressRefused) {
          return { kind: "missing", fileIndex: seg.fileIndex, reason: "redirect", status: 0 };
        }
        return { kind: "failed", reason: e instanceof Error ? e.message : String(e) };
      }
      const answer = { status: res.status, headers: (n: string) => res.header(n) };
      const v = judgeResponse(answer, {
        rangeStart: seg.rangeStart,
        rangeEnd: seg.rangeEnd,
        fileLength,
        wallClockMs: Date.now(),
      });
      if (v.kind === "redirect") {
        res.close();
        // judge the redirecting host by where its answer came from (fetch() does not say: by what its name resolves to)
        let from = res.address;
        if (from === null) {
          try {
            from = await client.addressOf(new URL(chain.url).hostname, signal);
          } catch {
            return { kind: "aborted" }; // only an abort ends a lookup early
          }
        }
        const f = followRedirect(chain, v.location, from ?? undefined);
        // a redirect we will not follow means the file is not to be had from this seed (not worth retrying)
        if (f.kind === "refused") {
          return { kind: "missing", fileIndex: seg.fileIndex, reason: "redirect", status: v.status };
        }
        chain = f.chain;
        sendAuthorization = f.sendAuthorization;
        continue;
      }
      if (v.kind === "missing") {
        res.close();
        return { kind: "missing", fileIndex: seg.fileIndex, reason: v.reason, status: v.status };
      }
      if (v.kind === "retry") {
        res.close();
        return { kind: "retry", afterMs: v.retryAfterMs, status: v.status };
      }
      if (v.kind === "failed") {
        res.close();
        return { kind: "failed", reason: `HTTP ${v.status}: ${v.reason}` };
      }
      const got = await readBody(res, v.skip, v.length, cutter, signal, client, touch);
      if (got === "aborted") return { kind: "aborted" };
      if (got < seg.length) return { kind: "short" };
      break;
    }
  }
  return { kind: "ok" };
}

/**
 * Reads a body: drops `skip` bytes, then feeds up to `length` to the cutter. Returns the bytes fed. The body is read
 * into a buffer the client lends, reused across runs (`fetch()`'s default reader handed out a fresh buffer per chunk,
 * which cost a third more CPU and 25 MB more RSS over 512 MiB).
 */
async function readBody(
  res: RangeResponse,
  skip: number,
  length: number,
  cutter: BlockCutter,
  signal: AbortSignal,
  client: RangeClient,
  touch: () => void,
): Promise<number | "aborted"> {
  let buf = client.takeBuffer();
  let fed = 0;
  try {
    while (fed < length) {
      let chunk: Uint8Array | null;
      try {
        chunk = await res.read(buf);
      } catch {
        return signal.aborted ? "aborted" : fed; // the server closed mid-body: what came is kept
      }
      if (chunk === null) break;
      touch();
      buf = new Uint8Array(chunk.buffer as ArrayBuffer); // a BYOB read took ours and gives its memory back
      if (skip > 0) {
        const drop = Math.min(skip, chunk.length);
        skip -= drop;
        chunk = chunk.subarray(drop);
      }
      const take = Math.min(chunk.length, length - fed);
      if (take > 0) cutter.feed(chunk.subarray(0, take));
      fed += take;
      const turn = maybeYield(); // a fast server must not keep timers and the writer's replies waiting
      if (turn) await turn;
    }
  } finally {
    res.close();
    client.giveBuffer(buf);
  }
  return fed;
}

function withoutCredentials(url: string): string {
  const u = new URL(url);
  u.username = "";
  u.password = "";
  return u.href;
}

/**
 * Cuts a run's payload bytes (arriving in order, segment after segment) into the blocks of its pieces: a block ends at
 * 16 KiB into its piece or at the piece's end. One staging buffer, reused.
 */
export class BlockCutter {
  readonly #geometry: PlanGeometry;
  readonly #onBlock: BlockSink;
  readonly #stage = new Uint8Array(BLOCK_BYTES);
  #pos = 0;
  #staged = 0;

  /** Cuts bytes of `geometry`'s payload for `onBlock`. */
  constructor(geometry: PlanGeometry, onBlock: BlockSink) {
    this.#geometry = geometry;
    this.#onBlock = onBlock;
  }

  /** Continues at payload offset `at` (a gap drops the block in progress). */
  seek(at: number): void {
    if (at !== this.#pos + this.#staged) {
      this.#pos = at;
      this.#staged = 0;
    }
  }

  /** Feeds `n` zero bytes (a padding file). */
  zeros(n: number): void {
    const z = new Uint8Array(Math.min(n, BLOCK_BYTES));
    while (n > 0) {
      const k = Math.min(n, z.length);
      this.feed(z.subarray(0, k));
      n -= k;
    }
  }

  /** Feeds payload bytes in order. */
  feed(bytes: Uint8Array): void {
    const g = this.#geometry;
    let off = 0;
    while (off < bytes.length) {
      const at = this.#pos + this.#staged; // payload offset of the next byte
      const piece = Math.floor(at / g.pieceLength);
      const pieceStart = piece * g.pieceLength;
      const pieceLen = Math.min(g.pieceLength, g.totalLength - pieceStart);
      const blockStart = pieceStart + Math.floor((at - pieceStart) / BLOCK_BYTES) * BLOCK_BYTES;
      const blockLen = Math.min(BLOCK_BYTES, pieceStart + pieceLen - blockStart);
      const need = blockStart + blockLen - at;
      const k = Math.min(need, bytes.length - off);
      if (at === blockStart && k === blockLen) {
        // a whole block in the bytes: handed on as a view, not staged (one copy fewer)
        this.#onBlock(piece, blockStart - pieceStart, bytes.subarray(off, off + k));
        off += k;
        this.#pos = blockStart + blockLen;
        this.#staged = 0;
        continue;
      }
      this.#stage.set(bytes.subarray(off, off + k), at - blockStart);
      off += k;
      if (this.#staged === 0) this.#pos = blockStart;
      this.#staged = at + k - blockStart;
      if (this.#staged === blockLen) {
        this.#onBlock(piece, blockStart - pieceStart, this.#stage.subarray(0, blockLen));
        this.#pos = blockStart + blockLen;
        this.#staged = 0;
      }
    }
  }
}
