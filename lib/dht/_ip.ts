/**
 * Address families of DHT contacts (BEP 32 keeps IPv4 and IPv6 apart), and what counts as one host. Internal.
 * @module
 */
import { ipBytes } from "../address.ts";

/**
 * The family of an IP literal (an IPv4-mapped IPv6 address counts as IPv4), or null when `host` is not one.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(ipFamily("127.0.0.1"), 4);
 * eq(ipFamily("2001:db8::1"), 6);
 * eq(ipFamily("localhost"), null);
 * ```
 */
export function ipFamily(host: string): 4 | 6 | null {
  const b = ipBytes(host);
  return b === null ? null : b.length === 4 ? 4 : 6;
}

/**
 * What counts as one host where the DHT allows one node per host: the IPv4 address, or the /64 of an IPv6 address (an
 * ordinary IPv6 user is given a whole /64); the host text itself for anything else.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(hostKey("10.0.0.1"), "10.0.0.1");
 * eq(hostKey("::ffff:10.0.0.1"), "10.0.0.1");
 * eq(hostKey("2001:db8:1:2::5"), hostKey("2001:db8:1:2:ffff::9"));
 * eq(hostKey("2001:db8:1:2::5") === hostKey("2001:db8:1:3::5"), false);
 * ```
 */
export function hostKey(host: string): string {
  const b = ipBytes(host);
  if (b === null) return host;
  if (b.length === 4) return b.join(".");
  let out = "";
  for (let i = 0; i < 8; i++) out += b[i].toString(16).padStart(2, "0");
  return `${out}/64`;
}
