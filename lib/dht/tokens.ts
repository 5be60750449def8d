/**
 * DHT tokens (BEP 5): those we issue in `get_peers` answers and check in `announce_peer` queries, and those other
 * nodes gave us, kept for our own `announce_peer`. Pure: secrets and `now` come from the caller.
 *
 * Issued tokens are the first {@linkcode TOKEN_BYTES} bytes of SHA-1(secret ‖ the asker's IP, compact), so nothing is
 * stored per asker. The caller makes a new random secret every {@linkcode TOKEN_ROTATE_MS} ({@linkcode rotationDue},
 * then {@linkcode rotateSecret}); a token made with the previous secret is still accepted, so a token lives between
 * 5 and 10 minutes (BEP 5 accepts tokens up to 10 minutes old). A secret not rotated for two periods validates
 * nothing, so no token outlives 10 minutes even if rotation stalls. The token depends on the IP only, not the port
 * (BEP 5: it is associated with the IP of the querying node); an IPv4-mapped IPv6 address counts as its IPv4 one.
 *
 * Received tokens are kept per node address and info-hash (libtorrent's tokens depend on the info-hash too), for
 * {@linkcode RECEIVED_TOKEN_TTL_MS}, at most {@linkcode DHT_MAX_RECEIVED_TOKENS}, the oldest evicted first.
 * @module
 */
import { formatAddress, ipBytes, type PeerAddress } from "../address.ts";
import { concatBytes, toHex } from "../bytes.ts";
import { sha1 } from "../sha1.ts";
import { DHT_MAX_RECEIVED_TOKENS, MAX_KRPC_TOKEN_BYTES } from "../limits.ts";

/** Bytes in a token we issue: 64 bits cannot be guessed within a token's life. */
export const TOKEN_BYTES = 8;
/** How often the secret changes (BEP 5's reference implementation: every 5 minutes). */
export const TOKEN_ROTATE_MS = 5 * 60_000;
/** The shortest secret accepted: a secret must not be guessable either. */
export const MIN_SECRET_BYTES = 8;
/**
 * How long a received token is used: a token issued as BEP 5 suggests stays valid at least 5 minutes; after that we
 * ask again (`get_peers`) rather than announce with a token that may be refused.
 */
export const RECEIVED_TOKEN_TTL_MS = 5 * 60_000;

/** The secrets tokens are made from. */
export interface TokenSecrets {
  readonly current: Uint8Array;
  /** The secret before `current`, still accepted for one period. */
  readonly previous: Uint8Array | null;
  /** When `current` was set. */
  readonly since: number;
}

/**
 * Starts with `secret` (random bytes from the caller) at `now`.
 * @throws {RangeError} when `secret` is shorter than {@linkcode MIN_SECRET_BYTES}.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const s = createTokenSecrets(new Uint8Array(16).fill(1), 0);
 * eq(s.previous, null);
 * ```
 */
export function createTokenSecrets(secret: Uint8Array, now: number): TokenSecrets {
  checkSecret(secret);
  return { current: secret.slice(), previous: null, since: now };
}

/**
 * Whether the secret is due for rotation at `now`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const s = createTokenSecrets(new Uint8Array(16), 0);
 * eq([rotationDue(s, TOKEN_ROTATE_MS - 1), rotationDue(s, TOKEN_ROTATE_MS)].join(), "false,true");
 * ```
 */
export function rotationDue(s: TokenSecrets, now: number): boolean {
  return now - s.since >= TOKEN_ROTATE_MS;
}

/**
 * Makes `secret` current; the current one becomes the previous, still accepted.
 * @throws {RangeError} when `secret` is shorter than {@linkcode MIN_SECRET_BYTES}.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const s0 = createTokenSecrets(new Uint8Array(16).fill(1), 0);
 * const token = issueToken(s0, "10.0.0.1");
 * const s1 = rotateSecret(s0, new Uint8Array(16).fill(2), TOKEN_ROTATE_MS);
 * eq(checkToken(s1, "10.0.0.1", token, TOKEN_ROTATE_MS), true);
 * const s2 = rotateSecret(s1, new Uint8Array(16).fill(3), 2 * TOKEN_ROTATE_MS);
 * eq(checkToken(s2, "10.0.0.1", token, 2 * TOKEN_ROTATE_MS), false);
 * ```
 */
export function rotateSecret(s: TokenSecrets, secret: Uint8Array, now: number): TokenSecrets {
  checkSecret(secret);
  return { current: secret.slice(), previous: s.current, since: now };
}

/**
 * The token for a node at `ip` (its address as text, e.g. `10.0.0.1` or `2001:db8::1`), made with the current secret.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const s = createTokenSecrets(new Uint8Array(16), 0);
 * eq(issueToken(s, "10.0.0.1").length, TOKEN_BYTES);
 * eq(checkToken(s, "10.0.0.1", issueToken(s, "10.0.0.1"), 0), true);
 * eq(checkToken(s, "10.0.0.2", issueToken(s, "10.0.0.1"), 0), false);
 * ```
 */
export function issueToken(s: TokenSecrets, ip: string): Uint8Array {
  return derive(s.current, ip);
}

/**
 * Whether `token` is one we issued to `ip` with the current secret or, within a period of the last rotation, the
 * previous one. A secret not rotated for two periods accepts nothing.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const s = createTokenSecrets(new Uint8Array(16), 0);
 * const t = issueToken(s, "::ffff:10.0.0.1");
 * eq(checkToken(s, "10.0.0.1", t, 1), true); // the same host
 * eq(checkToken(s, "10.0.0.1", t, 2 * TOKEN_ROTATE_MS), false); // not rotated: stale
 * ```
 */
export function checkToken(s: TokenSecrets, ip: string, token: Uint8Array, now: number): boolean {
  if (token.length !== TOKEN_BYTES) return false;
  const age = now - s.since;
  if (age < 2 * TOKEN_ROTATE_MS && same(derive(s.current, ip), token)) return true;
  return s.previous !== null && age < TOKEN_ROTATE_MS && same(derive(s.previous, ip), token);
}

function checkSecret(secret: Uint8Array): void {
  if (secret.length < MIN_SECRET_BYTES) {
    throw new RangeError(
      `Cannot use a token secret of ${secret.length} bytes: at least ${MIN_SECRET_BYTES} are needed`,
    );
  }
}

function derive(secret: Uint8Array, ip: string): Uint8Array {
  return sha1(concatBytes([secret, ipBytes(ip) ?? new TextEncoder().encode(ip)])).slice(0, TOKEN_BYTES);
}

/** Compares in time that depends on the length only, not on where the bytes differ. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Tokens other nodes gave us. Mutated in place by {@linkcode rememberToken} and {@linkcode tokenFor}. */
export interface ReceivedTokens {
  /** By `"<address> <info-hash hex>"`, the oldest first. */
  readonly entries: Map<string, { readonly token: Uint8Array; readonly at: number }>;
}

/** Which node gave a token, for which info-hash. */
export interface TokenSource {
  readonly address: PeerAddress;
  readonly infoHash: Uint8Array;
}

/**
 * An empty store of received tokens.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(createReceivedTokens().entries.size, 0);
 * ```
 */
export function createReceivedTokens(): ReceivedTokens {
  return { entries: new Map() };
}

/**
 * Keeps the token a node gave with its `get_peers` answer; a token longer than {@linkcode MAX_KRPC_TOKEN_BYTES} or
 * empty is not kept. Returns whether it was.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const store = createReceivedTokens();
 * const from = { address: { host: "10.0.0.1", port: 6881 }, infoHash: new Uint8Array(20) };
 * rememberToken(store, { ...from, token: new Uint8Array([1, 2, 3, 4]) }, 0);
 * eq(tokenFor(store, from, RECEIVED_TOKEN_TTL_MS - 1), new Uint8Array([1, 2, 3, 4]));
 * eq(tokenFor(store, from, RECEIVED_TOKEN_TTL_MS), null);
 * ```
 */
export function rememberToken(
  store: ReceivedTokens,
  r: TokenSource & { readonly token: Uint8Array },
  now: number,
): boolean {
  if (r.token.length === 0 || r.token.length > MAX_KRPC_TOKEN_BYTES) return false;
  const key = keyOf(r);
  store.entries.delete(key); // re-inserted last: the map stays oldest first
  store.entries.set(key, { token: r.token.slice(), at: now });
  dropExpired(store, now);
  while (store.entries.size > DHT_MAX_RECEIVED_TOKENS) {
    const oldest = store.entries.keys().next();
    if (oldest.done) break;
    store.entries.delete(oldest.value);
  }
  return true;
}

/** The token a node gave us for an info-hash, while it is fresh; otherwise null (look it up again). */
export function tokenFor(store: ReceivedTokens, from: TokenSource, now: number): Uint8Array | null {
  dropExpired(store, now);
  return store.entries.get(keyOf(from))?.token ?? null;
}

function keyOf(r: TokenSource): string {
  return `${formatAddress(r.address)} ${toHex(r.infoHash)}`;
}

function dropExpired(store: ReceivedTokens, now: number): void {
  for (const [key, e] of store.entries) {
    if (now - e.at < RECEIVED_TOKEN_TTL_MS) break;
    store.entries.delete(key);
  }
}
