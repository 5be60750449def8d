/**
 * Peer addresses: `HOST:PORT` text, and the compact binary forms of BEP 23 (IPv4) and BEP 7 (IPv6).
 * @module
 */

/** Where a peer listens. `host` is a dotted IPv4 address, an IPv6 address without brackets, or a host name. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** Text that is not a usable `HOST:PORT`, or compact bytes of the wrong size. */
export class AddressError extends SyntaxError {
  override readonly name = "AddressError";
  /** Makes the error. */
  constructor(detail: string) {
    super(detail);
  }
}

/**
 * Formats an address as `host:port`, bracketing IPv6 hosts; the key that tells peers apart (by address and port, so
 * several peers on one IP are distinct).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(formatAddress({ host: "::1", port: 6881 }), "[::1]:6881");
 * eq(formatAddress({ host: "127.0.0.1", port: 80 }), "127.0.0.1:80");
 * ```
 */
export function formatAddress(a: PeerAddress): string {
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/**
 * Parses `HOST:PORT` or `[IPV6]:PORT`.
 * @throws {AddressError} when the port is missing or outside 1–65535, or the host is empty.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(parseAddress("[::1]:51413"), { host: "::1", port: 51413 });
 * eq(parseAddress("example.org:6881"), { host: "example.org", port: 6881 });
 * ```
 */
export function parseAddress(text: string): PeerAddress {
  let host: string;
  let portText: string;
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text);
  if (m) {
    host = m[1];
    portText = m[2];
  } else {
    const i = text.lastIndexOf(":");
    if (i <= 0) throw new AddressError(`Cannot read address "${text}": expected HOST:PORT`);
    host = text.slice(0, i);
    portText = text.slice(i + 1);
    if (host.includes(":")) throw new AddressError(`Cannot read address "${text}": write IPv6 hosts as [ADDR]:PORT`);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw new AddressError(`Cannot read address "${text}": port must be 1-65535`);
  }
  if (!/^[A-Za-z0-9.:_-]+$/.test(host)) throw new AddressError(`Cannot read address "${text}": bad host`);
  return { host, port: Number(portText) };
}

/**
 * Decodes compact peers: 6 bytes each for IPv4 (`family` 4), 18 for IPv6 (`family` 6). Entries with port 0 are
 * dropped; at most `max` are returned.
 * @throws {AddressError} when the length is not a multiple of the entry size.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(decodeCompactPeers(new Uint8Array([127, 0, 0, 1, 0x1a, 0xe1]), 4), [{ host: "127.0.0.1", port: 6881 }]);
 * ```
 */
export function decodeCompactPeers(bytes: Uint8Array, family: 4 | 6, max = Infinity): PeerAddress[] {
  const size = family === 4 ? 6 : 18;
  if (bytes.length % size !== 0) {
    throw new AddressError(
      `Cannot read compact IPv${family} peers: ${bytes.length} bytes is not a multiple of ${size}`,
    );
  }
  const out: PeerAddress[] = [];
  for (let o = 0; o < bytes.length && out.length < max; o += size) {
    const port = (bytes[o + size - 2] << 8) | bytes[o + size - 1];
    if (port === 0) continue;
    out.push({ host: family === 4 ? ipv4Text(bytes, o) : ipv6Text(bytes, o), port });
  }
  return out;
}

/**
 * Encodes peers compactly; IPv4 hosts go with `family` 4, IPv6 with 6, others are skipped.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(encodeCompactPeers([{ host: "127.0.0.1", port: 6881 }], 4), new Uint8Array([127, 0, 0, 1, 0x1a, 0xe1]));
 * ```
 */
export function encodeCompactPeers(peers: readonly PeerAddress[], family: 4 | 6): Uint8Array {
  const size = family === 4 ? 6 : 18;
  const parts: Uint8Array[] = [];
  for (const p of peers) {
    const ip = family === 4 ? ipv4Bytes(p.host) : ipv6Bytes(p.host);
    if (!ip) continue;
    const e = new Uint8Array(size);
    e.set(ip);
    e[size - 2] = p.port >>> 8;
    e[size - 1] = p.port & 0xff;
    parts.push(e);
  }
  const out = new Uint8Array(parts.length * size);
  parts.forEach((p, i) => out.set(p, i * size));
  return out;
}

/** The 4 bytes of a dotted IPv4 address, or null when `host` is not one. */
export function ipv4Bytes(host: string): Uint8Array | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return null;
  const b = m.slice(1).map(Number);
  return b.every((x) => x <= 255) ? new Uint8Array(b) : null;
}

/** The 16 bytes of an IPv6 address (with `::` and an optional dotted IPv4 tail), or null when `host` is not one. */
export function ipv6Bytes(host: string): Uint8Array | null {
  if (!host.includes(":") || !/^[0-9a-fA-F:.]+$/.test(host)) return null;
  let tail: number[] = [];
  let text = host;
  const v4 = /:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
  if (v4) {
    const b = ipv4Bytes(v4[1]);
    if (!b) return null;
    tail = [(b[0] << 8) | b[1], (b[2] << 8) | b[3]];
    text = host.slice(0, v4.index + 1) + "0"; // placeholder group, replaced below
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !rest) return null;
  let all: number[];
  if (v4) {
    // drop the placeholder and put the IPv4 groups in its place
    if (halves.length === 2 && rest.length > 0) rest.pop();
    else head.pop();
  }
  const want = 8 - tail.length;
  if (halves.length === 2) {
    const fill = want - head.length - rest.length;
    if (fill < 1) return null;
    all = [...head, ...new Array(fill).fill(0), ...rest, ...tail];
  } else {
    if (head.length !== want) return null;
    all = [...head, ...tail];
  }
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >>> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function ipv4Text(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

function ipv6Text(b: Uint8Array, o: number): string {
  const g: string[] = [];
  for (let i = 0; i < 8; i++) g.push(((b[o + 2 * i] << 8) | b[o + 2 * i + 1]).toString(16));
  // compress the longest run of zero groups (RFC 5952)
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === "0") j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return g.join(":");
  return `${g.slice(0, best).join(":")}::${g.slice(best + bestLen).join(":")}`;
}

/**
 * Where an address can be reached from: anywhere (`public`), only from this host (`loopback`: 127.0.0.0/8, ::1),
 * only from a local network (`private`: RFC 1918, link-local 169.254.0.0/16 and fe80::/10, unique local fc00::/7),
 * or from nowhere worth telling anyone about (`unusable`: host names, unspecified, 0.0.0.0/8, multicast, reserved
 * 240.0.0.0/4 and broadcast). An IPv4-mapped IPv6 address (::ffff:a.b.c.d) has the scope of its IPv4 address.
 */
export type AddressScope = "public" | "private" | "loopback" | "unusable";

/**
 * The bytes of an IP literal: 4 for IPv4 and for IPv4-mapped IPv6 (`::ffff:a.b.c.d`, the same host), 16 for other
 * IPv6; null for a host name or anything else.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(ipBytes("10.0.0.1"), new Uint8Array([10, 0, 0, 1]));
 * eq(ipBytes("::ffff:10.0.0.1"), new Uint8Array([10, 0, 0, 1]));
 * eq(ipBytes("::1")?.length, 16);
 * eq(ipBytes("example.org"), null);
 * ```
 */
export function ipBytes(host: string): Uint8Array | null {
  const v4 = ipv4Bytes(host);
  if (v4) return v4;
  const v6 = ipv6Bytes(host);
  if (!v6) return null;
  const mapped = v6.subarray(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;
  return mapped ? v6.slice(12) : v6;
}

/**
 * The scope of a host (see {@linkcode AddressScope}).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(addressScope("192.168.1.9"), "private");
 * eq(addressScope("::1"), "loopback");
 * eq(addressScope("2001:db8::1"), "public");
 * eq(addressScope("example.org"), "unusable");
 * ```
 */
export function addressScope(host: string): AddressScope {
  const b = ipBytes(host);
  if (!b) return "unusable";
  if (b.length === 4) return scope4(b); // IPv4, and IPv4-mapped IPv6 (::ffff:a.b.c.d)
  let zeros = 0;
  while (zeros < 16 && b[zeros] === 0) zeros++;
  if (zeros === 16) return "unusable"; // ::
  if (zeros === 15 && b[15] === 1) return "loopback"; // ::1
  if ((b[0] & 0xfe) === 0xfc) return "private"; // fc00::/7
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) return "private"; // fe80::/10
  if (b[0] === 0xff) return "unusable"; // multicast
  return "public";
}

function scope4(b: Uint8Array): AddressScope {
  if (b[0] === 0 || b[0] >= 224) return "unusable"; // this network, multicast, reserved, broadcast
  if (b[0] === 127) return "loopback";
  if (b[0] === 10 || (b[0] === 172 && (b[1] & 0xf0) === 16) || (b[0] === 192 && b[1] === 168)) return "private";
  if (b[0] === 169 && b[1] === 254) return "private"; // link-local
  return "public";
}

/**
 * Whether an address of scope `address` may be passed to or taken from a peer of scope `peer`: public addresses to
 * and from anyone; private ones only between local peers (loopback or private); loopback ones only between loopback
 * peers (another host's 127.0.0.1 is itself); unusable ones never.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(mayShare("private", "public"), false);
 * eq(mayShare("private", "loopback"), true);
 * eq(mayShare("loopback", "private"), false);
 * ```
 */
export function mayShare(address: AddressScope, peer: AddressScope): boolean {
  switch (address) {
    case "public":
      return true;
    case "private":
      return peer === "private" || peer === "loopback";
    case "loopback":
      return peer === "loopback";
    case "unusable":
      return false;
  }
}
