/**
 * Host-name lookups for the runtime (the DHT's bootstrap routers, web-seed redirects): every A and AAAA address of a
 * name, bounded in time, through `Deno.resolveDns` (which reads /etc/hosts too). IP literals need no lookup.
 * @module
 */
import { clearTimer, setTimer } from "./timers.ts";

/** How long a lookup may take. */
export const RESOLVE_TIMEOUT_MS = 5_000;

/**
 * Whether `host` is an IPv4 or IPv6 literal (brackets stripped first), which needs no lookup.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(isIpLiteral("127.0.0.1"), true);
 * eq(isIpLiteral("[::1]"), true);
 * eq(isIpLiteral("mirror.example"), false);
 * ```
 */
export function isIpLiteral(host: string): boolean {
  const h = bareHost(host);
  return /^[0-9.]+$/.test(h) || h.includes(":");
}

/** `host` without the brackets of an IPv6 literal in a URL (`[::1]` -> `::1`). */
export function bareHost(host: string): string {
  return host.replace(/^\[|\]$/g, "");
}

/**
 * Every A and AAAA address of `host` now: none when it does not resolve within {@linkcode RESOLVE_TIMEOUT_MS} (or
 * has no such records, or there is no DNS here).
 * @throws the signal's reason when `signal` aborts.
 */
export async function resolveAll(host: string, signal?: AbortSignal): Promise<string[]> {
  const ac = new AbortController();
  const timer = setTimer(() => ac.abort(), RESOLVE_TIMEOUT_MS);
  const both = signal ? AbortSignal.any([signal, ac.signal]) : ac.signal;
  const out: string[] = [];
  try {
    for (const kind of ["A", "AAAA"] as const) {
      try {
        out.push(...await Deno.resolveDns(host, kind, { signal: both }));
      } catch {
        signal?.throwIfAborted(); // else no such record, no DNS here, or the time-out
      }
    }
  } finally {
    clearTimer(timer);
  }
  return out;
}

/** What {@linkcode checkAddresses} found: every address allowed, or the first one refused (null: none resolved). */
export type AddressVerdict = { readonly ok: true } | { readonly ok: false; readonly address: string | null };

/**
 * Whether `allowed` accepts every address `host` leads to now: an IP literal as it is, a name by each address it
 * resolves to (through `resolve`, {@linkcode resolveAll} by default). A name that resolves to nothing is refused
 * (address null): after a redirect, a name that cannot be checked is not asked.
 * @throws the signal's reason when `signal` aborts.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const publicOnly = (a: string) => !a.startsWith("127.");
 * eq(await checkAddresses("127.0.0.1", publicOnly), { ok: false, address: "127.0.0.1" });
 * eq(await checkAddresses("mirror.example", publicOnly, undefined, async () => ["203.0.113.9"]), { ok: true });
 * eq(await checkAddresses("gone.example", publicOnly, undefined, async () => []), { ok: false, address: null });
 * ```
 */
export async function checkAddresses(
  host: string,
  allowed: (address: string) => boolean,
  signal?: AbortSignal,
  resolve: (host: string, signal?: AbortSignal) => Promise<string[]> = resolveAll,
): Promise<AddressVerdict> {
  const bare = bareHost(host);
  const all = isIpLiteral(bare) ? [bare] : await resolve(bare, signal);
  if (all.length === 0) return { ok: false, address: null };
  const refused = all.find((a) => !allowed(a));
  return refused === undefined ? { ok: true } : { ok: false, address: refused };
}
