/**
 * Which redirects of a web seed to follow, and with which credentials: a pure policy over a chain of hops. The runtime
 * starts a chain at the URL it asks, and for each redirect answer asks {@linkcode followRedirect} where to go.
 *
 * Policy:
 * - At most {@linkcode WEBSEED_MAX_REDIRECTS} redirects per request (`too-many`): enough for any mirror network, and
 *   the end of any loop.
 * - `Location` is resolved against the current URL (RFC 9110 allows relative references) and its fragment dropped;
 *   it must parse (`bad-location`), be `http:` or `https:` (`unsupported-scheme`) and fit in
 *   {@linkcode WEBSEED_MAX_URL_CHARS} (`too-long`).
 * - Credentials belong to the origin (scheme, host, port) of the chain's first URL, the seed's own. A URL's userinfo
 *   and the `Authorization` header go to that origin only: a hop to any other origin drops the userinfo (the
 *   Location's own too) and says not to send `Authorization` (`sendAuthorization`); an https page redirecting to http
 *   is another origin, so the downgrade carries no credentials.
 * - Address scopes, from most public to most local: `public`; `private` (10/8, 172.16/12, 192.168/16, link-local
 *   169.254/16 and fe80::/10, unique-local fc00::/7); `loopback` (127/8, ::1, `localhost` and `*.localhost`). A chain
 *   may never move to an address more local than any host that chose a hop in it: the first URL was chosen by the
 *   user (anything goes), each later one by the server that redirected to it. So a public mirror cannot send btfetch
 *   to 127.0.0.1 or to the router at 192.168.1.1 (`to-local`), while a loopback test server may redirect within
 *   loopback and a LAN mirror within the LAN. IP literals that reach nothing or this host by accident (0.0.0.0/8, ::,
 *   multicast, 240/4) are never followed (`bad-address`). The URL parser has already turned `127.1`, `0x7f000001`
 *   and `::ffff:127.0.0.1` into their canonical forms, so those cannot slip by.
 * - Host names other than `localhost` count as public: judged by name alone. DNS can point a public name at
 *   127.0.0.1, so after a redirect the runtime checks the address with {@linkcode mayConnect}: the one it connected
 *   to, or (through `fetch()`, which does not tell) every one the name resolves to (`engine/webseed_http.ts`).
 * @module
 */
import { addressScope, ipv4Bytes, ipv6Bytes } from "../address.ts";
import { WEBSEED_MAX_REDIRECTS, WEBSEED_MAX_URL_CHARS } from "../limits.ts";
import { parseWebSeedUrl } from "./urls.ts";

/** Where a host can be reached from; see the module policy. */
export type HostScope = "public" | "private" | "loopback";

const RANK: Record<HostScope, number> = { public: 0, private: 1, loopback: 2 };

/** One request's way through redirects. */
export interface RedirectChain {
  /** The URL to ask now. */
  readonly url: string;
  /** Redirects followed so far. */
  readonly hops: number;
  /** The origin of the first URL: the only one credentials go to. */
  readonly origin: string;
  /** The most public scope among those who chose a hop so far (`loopback` while only the user has). */
  readonly trust: HostScope;
}

/** Why a redirect was not followed. */
export type RedirectRefusal =
  | "too-many"
  | "bad-location"
  | "unsupported-scheme"
  | "too-long"
  | "to-local"
  | "bad-address";

/** Follow to `chain.url` (sending `Authorization` only if `sendAuthorization`), or stop. */
export type RedirectVerdict =
  | { readonly kind: "follow"; readonly chain: RedirectChain; readonly sendAuthorization: boolean }
  | { readonly kind: "refused"; readonly reason: RedirectRefusal; readonly location: string };

/**
 * The scope of a URL's host name (IPv6 in brackets or not): `unusable` for IP literals that should never be asked
 * (0.0.0.0/8, ::, multicast, 240/4). Names count as public, `localhost` and `*.localhost` as loopback.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(hostScope("[::1]"), "loopback");
 * eq(hostScope("LocalHost."), "loopback");
 * eq(hostScope("172.20.0.5"), "private");
 * eq(hostScope("mirror.example"), "public");
 * eq(hostScope("0.0.0.0"), "unusable");
 * ```
 */
export function hostScope(hostname: string): HostScope | "unusable" {
  let host = hostname.toLowerCase();
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host === "localhost" || host.endsWith(".localhost")) return "loopback";
  if (ipv4Bytes(host) === null && ipv6Bytes(host) === null) return "public";
  return addressScope(host);
}

/**
 * A chain starting at the URL the runtime is about to ask (the seed's URL for a file).
 * @throws {WebSeedError} when the URL is not a usable web seed URL.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(startChain("http://u:p@m.example/t/a#x"), {
 *   url: "http://u:p@m.example/t/a",
 *   hops: 0,
 *   origin: "http://m.example",
 *   trust: "loopback",
 * });
 * ```
 */
export function startChain(url: string): RedirectChain {
  const u = parseWebSeedUrl(url);
  return { url: u.href, hops: 0, origin: u.origin, trust: "loopback" };
}

/**
 * Where a redirect answer with `location` leads from `chain`, or why it is not followed (see the module policy).
 * `fromAddress`: the IP the redirect answer came from, when known; the redirecting host is judged by it instead of
 * by its name.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const chain = startChain("http://u:p@m.example/t/a");
 * eq(followRedirect(chain, "/mirror/a"), {
 *   kind: "follow",
 *   chain: { url: "http://u:p@m.example/mirror/a", hops: 1, origin: "http://m.example", trust: "public" },
 *   sendAuthorization: true,
 * });
 * eq(followRedirect(chain, "http://cdn.example/a"), {
 *   kind: "follow",
 *   chain: { url: "http://cdn.example/a", hops: 1, origin: "http://m.example", trust: "public" },
 *   sendAuthorization: false,
 * });
 * eq(followRedirect(chain, "http://127.0.0.1:8080/admin"), {
 *   kind: "refused",
 *   reason: "to-local",
 *   location: "http://127.0.0.1:8080/admin",
 * });
 * ```
 */
export function followRedirect(chain: RedirectChain, location: string, fromAddress?: string): RedirectVerdict {
  const refuse = (reason: RedirectRefusal): RedirectVerdict => ({
    kind: "refused",
    reason,
    location: location.length > 200 ? `${location.slice(0, 200)}…` : location,
  });
  if (chain.hops >= WEBSEED_MAX_REDIRECTS) return refuse("too-many");
  if (location.length > WEBSEED_MAX_URL_CHARS) return refuse("too-long");
  let from: URL;
  let to: URL;
  try {
    from = new URL(chain.url);
    to = new URL(location, from);
  } catch {
    return refuse("bad-location");
  }
  if (to.protocol !== "http:" && to.protocol !== "https:") return refuse("unsupported-scheme");
  to.hash = "";
  const sameOrigin = to.origin === chain.origin;
  if (!sameOrigin) {
    to.username = "";
    to.password = "";
  }
  if (to.href.length > WEBSEED_MAX_URL_CHARS) return refuse("too-long");
  const target = hostScope(to.hostname);
  if (target === "unusable") return refuse("bad-address");
  // The host that redirected is judged by the address its answer came from when the runtime knows it (a name that
  // resolves to the LAN is a LAN server), else by its name.
  const chooser = hostScope(fromAddress ?? from.hostname);
  // The host that redirected now counts among those who chose. An unusable one can only be the user's first URL
  // (hops to one are refused); it reaches this host, so it counts as loopback and leaves trust as it is.
  const trust = chooser === "unusable" || RANK[chooser] >= RANK[chain.trust] ? chain.trust : chooser;
  if (RANK[target] > RANK[trust]) return refuse("to-local");
  return {
    kind: "follow",
    chain: { url: to.href, hops: chain.hops + 1, origin: chain.origin, trust },
    sendAuthorization: sameOrigin,
  };
}

/**
 * The most public of `addresses` (IPs; see {@linkcode hostScope}), or null when there are none: where an answer most
 * likely came from when only the name it was asked of is known.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(mostPublic(["127.0.0.1", "192.168.1.5", "203.0.113.9"]), "203.0.113.9");
 * eq(mostPublic([]), null);
 * ```
 */
export function mostPublic(addresses: readonly string[]): string | null {
  const rank = (a: string) => {
    const s = hostScope(a);
    return s === "unusable" ? Infinity : RANK[s];
  };
  return addresses.length === 0 ? null : addresses.reduce((best, a) => (rank(a) < rank(best) ? a : best));
}

/**
 * Whether the runtime may talk to `address` (the IP it actually connected to, or is about to) for the chain's
 * current URL: no more local than the chain's trust. Always true before any redirect.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const chain = startChain("http://m.example/t/a");
 * eq(mayConnect(chain, "127.0.0.1"), true);
 * const next = followRedirect(chain, "http://rebind.example/a");
 * eq(next.kind === "follow" && mayConnect(next.chain, "127.0.0.1"), false);
 * eq(next.kind === "follow" && mayConnect(next.chain, "203.0.113.9"), true);
 * ```
 */
export function mayConnect(chain: RedirectChain, address: string): boolean {
  const scope = hostScope(address);
  if (scope === "unusable") return chain.hops === 0;
  return RANK[scope] <= RANK[chain.trust];
}
