/**
 * The HTTP(S) tracker transport: one GET with `fetch`, the body read as a stream and cut off at
 * {@linkcode MAX_TRACKER_RESPONSE_BYTES}, the reply decoded by `announce.ts`.
 *
 * Errors: only the IO (`fetch` and reading the body) is caught and turned into `network` or `timeout`; the codec runs
 * outside that net, so a `TrackerError` from it is the tracker's fault and anything else it throws is our bug and
 * passes unchanged.
 * @module
 */
import { MAX_TRACKER_RESPONSE_BYTES } from "../limits.ts";
import { type AnnounceParams, type AnnounceReply, announceUrl, parseAnnounceReply, TrackerError } from "./announce.ts";
import { concatBytes } from "../bytes.ts";
import { type Clock, realClock } from "./clock.ts";

/** Options of {@linkcode httpAnnounce}. */
export interface HttpAnnounceOptions {
  /** Bound on the whole request, body included. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** The clock the `timeoutMs` timer runs on; default {@linkcode realClock}. */
  readonly clock?: Clock;
}

/** Reads at most `limit` bytes of a body; null when it is longer (the rest is not read). */
async function readBounded(res: Response, limit: number): Promise<Uint8Array | null> {
  if (!res.body) return new Uint8Array();
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        return null;
      }
      parts.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return concatBytes(parts);
}

/**
 * Announces to an HTTP(S) tracker.
 * @throws {TrackerError} `failure` (the tracker's `failure reason`), `malformed`, `http-status` (a non-2xx status;
 * the message carries the failure reason when the body has one), `too-large` (body over
 * {@linkcode MAX_TRACKER_RESPONSE_BYTES}), `timeout` (no whole reply within `timeoutMs`), `network` (connection
 * failures, or `signal` aborted), `unsupported-scheme` (not an http or https URL `fetch` accepts).
 * @throws {RangeError} when `p` is out of range (see `announceUrl`): a bug of the caller, not of the tracker.
 */
export async function httpAnnounce(url: string, p: AnnounceParams, opts: HttpAnnounceOptions): Promise<AnnounceReply> {
  if (!/^https?:\/\//i.test(url)) {
    throw new TrackerError("unsupported-scheme", url, `Cannot announce to "${url}": expected http:// or https://`);
  }
  const target = announceUrl(url, p);
  let request: Request;
  try {
    request = new Request(target, { redirect: "follow", headers: { "accept-encoding": "identity" } });
  } catch (e) {
    // the URL came from a torrent or a flag: one fetch cannot use (bad host, port, credentials) is the tracker's
    throw new TrackerError("unsupported-scheme", url, `Cannot announce to "${url}": not a usable URL`, { cause: e });
  }
  const clock = opts.clock ?? realClock;
  const ctl = new AbortController();
  let timedOut = false;
  const timer = clock.setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, opts.timeoutMs);
  const onAbort = (): void => ctl.abort();
  if (opts.signal?.aborted) ctl.abort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const failed = (e: unknown): TrackerError => {
    if (timedOut) {
      return new TrackerError("timeout", url, `No reply from ${url} within ${opts.timeoutMs} ms`, { cause: e });
    }
    if (opts.signal?.aborted) return new TrackerError("network", url, `Announce to ${url} was cancelled`, { cause: e });
    const detail = e instanceof Error ? e.message : String(e);
    return new TrackerError("network", url, `Cannot reach tracker ${url}: ${detail}`, { cause: e });
  };
  let res: Response;
  let body: Uint8Array | null;
  try {
    // IO only: whatever fetch or the body stream throws (a TypeError, by the fetch spec) is the network's doing
    res = await fetch(request, { signal: ctl.signal });
    body = await readBounded(res, MAX_TRACKER_RESPONSE_BYTES);
  } catch (e) {
    throw failed(e);
  } finally {
    clock.clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
  }
  if (body === null) {
    throw new TrackerError(
      "too-large",
      url,
      `Tracker reply from ${url} exceeds the limit of ${MAX_TRACKER_RESPONSE_BYTES} bytes`,
    );
  }
  if (!res.ok) {
    let reason = "";
    try {
      parseAnnounceReply(body, url);
    } catch (e) {
      if (!(e instanceof TrackerError)) throw e; // a bug in the codec, not an unreadable error page
      if (e.code === "failure") reason = `: ${e.message}`;
    }
    throw new TrackerError("http-status", url, `Tracker ${url} answered HTTP ${res.status}${reason}`);
  }
  return parseAnnounceReply(body, url);
}
