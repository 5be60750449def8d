/**
 * The HTTP(S) tracker transport: one GET with `fetch`, the body read as a stream and cut off at
 * {@linkcode MAX_TRACKER_RESPONSE_BYTES}, the reply decoded by `announce.ts`.
 *
 * Redirects follow the web seeds' policy (`webseed/redirect.ts`): at most five, http and https only, and never to an
 * address more local than any host that chose a hop, so a public tracker (or whoever answers for its name) cannot
 * turn announces into requests to 127.0.0.1 or the LAN. A name reached after a redirect is resolved first and every
 * address it gives is checked (`fetch()` does not say where it connected).
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
import {
  followRedirect,
  mayConnect,
  type RedirectChain,
  type RedirectRefusal,
  startChain,
} from "../webseed/redirect.ts";
import { checkAddresses, resolveAll } from "../resolve.ts";

/** Options of {@linkcode httpAnnounce}. */
export interface HttpAnnounceOptions {
  /** Bound on the whole request, body included. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** The clock the `timeoutMs` timer runs on; default {@linkcode realClock}. */
  readonly clock?: Clock;
  /** The HTTP client (tests give a stand-in); default the global `fetch`. */
  readonly fetch?: typeof fetch;
  /** Every address a host name resolves to (tests give a stand-in); default `resolve.ts`'s `resolveAll`. */
  readonly resolve?: (host: string, signal?: AbortSignal) => Promise<string[]>;
}

/** What each refusal of a redirect means, for the error line. */
const REFUSED: Record<RedirectRefusal | "resolves-local" | "unresolved", string> = {
  "too-many": "too many redirects",
  "bad-location": "its Location is not a URL",
  "unsupported-scheme": "it is not http or https",
  "too-long": "the URL is too long",
  "to-local": "a more public server may not send btfetch to a local or private address",
  "bad-address": "that address reaches nothing",
  "resolves-local": "its name resolves to a local or private address, where a more public server may not send btfetch",
  "unresolved": "its name does not resolve here, so it cannot be checked",
};

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
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
  const request = (at: string): Request => {
    try {
      return new Request(at, { redirect: "manual", headers: { "accept-encoding": "identity" } });
    } catch (e) {
      // the URL came from a torrent, a flag or a redirect: one fetch cannot use (bad host, port, credentials)
      throw new TrackerError("unsupported-scheme", url, `Cannot announce to "${at}": not a usable URL`, { cause: e });
    }
  };
  let chain: RedirectChain;
  try {
    chain = startChain(target);
  } catch (e) {
    throw new TrackerError("unsupported-scheme", url, `Cannot announce to "${url}": not a usable URL`, { cause: e });
  }
  request(chain.url);
  const fetchImpl = opts.fetch ?? fetch;
  const resolve = opts.resolve ?? resolveAll;
  const refused = (why: keyof typeof REFUSED, location: string): TrackerError =>
    new TrackerError(
      "redirect",
      url,
      `Tracker ${url} redirected to ${location}, which btfetch does not follow: ${REFUSED[why]}`,
    );
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
    for (;;) {
      if (chain.hops > 0) {
        // after a redirect: the name is judged by where it leads now, before anything is sent
        const hop = chain;
        const host = new URL(hop.url).hostname;
        const v = await checkAddresses(host, (a) => mayConnect(hop, a), ctl.signal, resolve).catch((e) => {
          throw failed(e);
        });
        if (!v.ok) throw refused(v.address === null ? "unresolved" : "resolves-local", chain.url);
      }
      // IO only: whatever fetch or the body stream throws (a TypeError, by the fetch spec) is the network's doing
      res = await fetchImpl(request(chain.url), { signal: ctl.signal }).catch((e) => {
        throw failed(e);
      });
      const location = isRedirect(res.status) ? res.headers.get("location") : null;
      if (location === null) break;
      await res.body?.cancel().catch(() => {});
      const v = followRedirect(chain, location);
      if (v.kind === "refused") throw refused(v.reason, v.location);
      chain = v.chain;
    }
    body = await readBounded(res, MAX_TRACKER_RESPONSE_BYTES).catch((e) => {
      throw failed(e);
    });
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
