/**
 * KRPC, the DHT's message format (BEP 5), as a pure codec: one bencoded dictionary per UDP datagram, a query
 * (`ping`, `find_node`, `get_peers`, `announce_peer`), a response or an error, with IPv6 nodes and the `want` list
 * of BEP 32, the responder's view of our address (`ip`, BEP 42) and the read-only flag (`ro`, BEP 43).
 *
 * Strict where a mistake would mislead the node: ids and info-hashes are exactly 20 bytes, ports 1–65535, compact
 * node strings multiples of 26 (IPv4) or 38 (IPv6) bytes, peers in `values` 6 or 18 bytes each, and every length and
 * count within a limit of `lib/limits.ts`. Tolerant where real clients differ: unknown keys are ignored, dictionary
 * keys may come unsorted (the first of duplicates wins), a `v` that is too long or no string is dropped, as is an
 * unusable `ip`, an unknown `want` entry is skipped, and an `e` that is a bare string reads as a generic error (201).
 * A query whose name we do not know decodes to {@linkcode KrpcUnknownQuery}, to be answered with error 204.
 *
 * Canonical out: `encodeKrpc(decodeKrpc(b))` is `b` for every canonical packet made of the keys read here, and
 * `decodeKrpc(encodeKrpc(m))` is `m` for every message `encodeKrpc` accepts.
 * @module
 */
import { decodeCompactPeers, ipv4Bytes, ipv6Bytes, type PeerAddress } from "../address.ts";
import {
  type BencodeDict,
  BencodeError,
  type BencodeInput,
  type BencodeValue,
  decodeBencode,
  encodeBencode,
  isDict,
  keyBytes,
  latin1Key,
} from "../bencode.ts";
import {
  MAX_KRPC_DEPTH,
  MAX_KRPC_ERROR_MESSAGE_BYTES,
  MAX_KRPC_NODES,
  MAX_KRPC_PACKET_BYTES,
  MAX_KRPC_QUERY_NAME_BYTES,
  MAX_KRPC_TOKEN_BYTES,
  MAX_KRPC_TRANSACTION_ID_BYTES,
  MAX_KRPC_VALUES,
  MAX_KRPC_VERSION_BYTES,
  MAX_KRPC_WANT_ENTRIES,
} from "../limits.ts";
import { ID_BYTES, type NodeInfo } from "./node_id.ts";

/** Bytes of one compact IPv4 node (BEP 5): id, address, port. */
export const COMPACT_NODE_V4_BYTES = 26;
/** Bytes of one compact IPv6 node (BEP 32): id, address, port. */
export const COMPACT_NODE_V6_BYTES = 38;

/** The error codes of BEP 5 that a node sends. */
export const KRPC_ERROR_CODE = { generic: 201, server: 202, protocol: 203, methodUnknown: 204 } as const;

/** The queries this codec knows (BEP 5). */
export type KrpcQueryName = "ping" | "find_node" | "get_peers" | "announce_peer";

/** An entry of a BEP 32 `want` list: the address families whose nodes the asker wants. */
export type KrpcWant = "n4" | "n6";

/** What every KRPC message carries: the transaction id, echoed in the reply, and the optional client version. */
interface KrpcCommon {
  /** The transaction id, 1 to {@linkcode MAX_KRPC_TRANSACTION_ID_BYTES} bytes. */
  readonly t: Uint8Array;
  /** The sender's client version (`v`), by convention 2 letters and 2 bytes; absent when missing or unusable. */
  readonly v?: Uint8Array;
}

/** What every known query carries. */
interface KrpcQueryCommon extends KrpcCommon {
  readonly y: "q";
  /** The asker's node id (`a.id`), 20 bytes. */
  readonly id: Uint8Array;
  /** BEP 43: the asker is read-only and answers no queries, so it must not enter routing tables. */
  readonly ro?: boolean;
}

/** `ping`: is the node alive, and what is its id. */
export interface PingQuery extends KrpcQueryCommon {
  readonly q: "ping";
}

/** `find_node`: the nodes closest to `target`. */
export interface FindNodeQuery extends KrpcQueryCommon {
  readonly q: "find_node";
  readonly target: Uint8Array;
  /** BEP 32: which families of nodes to return; absent means the family of the socket it came on. */
  readonly want?: readonly KrpcWant[];
}

/** `get_peers`: peers of a torrent, or else the nodes closest to its info-hash, and a token to announce with. */
export interface GetPeersQuery extends KrpcQueryCommon {
  readonly q: "get_peers";
  readonly infoHash: Uint8Array;
  /** BEP 32: which families of nodes to return. */
  readonly want?: readonly KrpcWant[];
}

/** `announce_peer`: the asker downloads `infoHash` and listens on `port` (or on its UDP source port if implied). */
export interface AnnouncePeerQuery extends KrpcQueryCommon {
  readonly q: "announce_peer";
  readonly infoHash: Uint8Array;
  /** The peer's TCP port, 1–65535; may be 0 when `impliedPort` is true (the UDP source port is used instead). */
  readonly port: number;
  /** `implied_port`: use the UDP source port instead of `port`; absent when the key was absent. */
  readonly impliedPort?: boolean;
  /** The token from an earlier `get_peers` answer, at most {@linkcode MAX_KRPC_TOKEN_BYTES} bytes. */
  readonly token: Uint8Array;
}

/** A query of a known kind. */
export type KrpcQuery = PingQuery | FindNodeQuery | GetPeersQuery | AnnouncePeerQuery;

/**
 * A query of a kind we do not know (BEP 44 `get`, BEP 51 `sample_infohashes`, anything): answer it with error 204
 * (method unknown), echoing `t`. Its arguments are not read.
 */
export interface KrpcUnknownQuery extends KrpcCommon {
  readonly y: "q";
  readonly q: "unknown";
  /** The query name as a binary string (one character per byte), at most {@linkcode MAX_KRPC_QUERY_NAME_BYTES}. */
  readonly method: string;
}

/** A response (`y` = `r`). Which query it answers is known only from `t`. */
export interface KrpcResponse extends KrpcCommon {
  readonly y: "r";
  /** The responder's node id (`r.id`), 20 bytes. */
  readonly id: Uint8Array;
  /** IPv4 nodes (`r.nodes`), at most {@linkcode MAX_KRPC_NODES}. */
  readonly nodes?: readonly NodeInfo[];
  /** IPv6 nodes (`r.nodes6`, BEP 32), at most {@linkcode MAX_KRPC_NODES}. */
  readonly nodes6?: readonly NodeInfo[];
  /** Peers of the torrent (`r.values`, IPv4 and IPv6 mixed), at most {@linkcode MAX_KRPC_VALUES}. */
  readonly values?: readonly PeerAddress[];
  /** The token for a later `announce_peer` (`r.token`). */
  readonly token?: Uint8Array;
  /** BEP 42: our address as the responder saw it (top-level `ip`); absent when missing or unusable. */
  readonly ip?: PeerAddress;
}

/** An error (`y` = `e`): a code (201 generic, 202 server, 203 protocol, 204 method unknown) and a message. */
export interface KrpcErrorReply extends KrpcCommon {
  readonly y: "e";
  readonly code: number;
  /**
   * The message, at most {@linkcode MAX_KRPC_ERROR_MESSAGE_BYTES} bytes: UTF-8, or when not valid UTF-8 its ASCII
   * with other bytes as `?`. Untrusted text that may hold control characters: sanitise before printing.
   */
  readonly message: string;
}

/** A decoded KRPC message. */
export type KrpcMessage = KrpcQuery | KrpcUnknownQuery | KrpcResponse | KrpcErrorReply;

/** Why a KRPC message was refused. */
export type DhtErrorCode =
  /** The packet, or a string in it, is longer than its limit. */
  | "too-long"
  /** The packet is not one valid bencoded value (the `cause` is the {@linkcode BencodeError}). */
  | "bad-bencode"
  /** A required key is absent. */
  | "missing-key"
  /** A key holds the wrong bencode type. */
  | "wrong-type"
  /** A string has the wrong length: an id not 20 bytes, a compact string not a multiple of its entry size. */
  | "bad-length"
  /** A port outside 1–65535. */
  | "bad-port"
  /** A list or compact string holds more entries than its limit. */
  | "too-many"
  /** A value outside its domain: an unknown `y`, an `implied_port` other than 0 or 1, an error code out of range. */
  | "bad-value";

/** What a {@linkcode DhtError} knows of the message it refused, so a node can still answer a bad query with 203. */
export interface DhtErrorContext {
  /** The transaction id, when it was read before the fault. */
  readonly transactionId?: Uint8Array;
  /** The message type, when it was read before the fault. */
  readonly messageType?: "q" | "r" | "e";
}

/**
 * A malformed KRPC message. `path` locates the fault (`a.info_hash`, `r.nodes[3]`, `e[0]`; empty for the whole
 * packet). When the transaction id and type were read first they are kept: a query refused this way deserves error
 * 203 (protocol error) with its `t`.
 */
export class DhtError extends SyntaxError {
  override readonly name = "DhtError";
  /** The transaction id, when it was read before the fault. */
  readonly transactionId?: Uint8Array;
  /** The message type, when it was read before the fault. */
  readonly messageType?: "q" | "r" | "e";
  /** Makes the error; `detail` says what was wrong, with the bad value. */
  constructor(
    readonly code: DhtErrorCode,
    readonly path: string,
    detail: string,
    context: DhtErrorContext = {},
    options?: ErrorOptions,
  ) {
    super(`Cannot decode KRPC message${path === "" ? "" : ` at ${path}`}: ${detail}`, options);
    if (context.transactionId !== undefined) this.transactionId = context.transactionId;
    if (context.messageType !== undefined) this.messageType = context.messageType;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

/** Mutable while decoding: what is known so far, for the errors. */
interface Ctx {
  transactionId?: Uint8Array;
  messageType?: "q" | "r" | "e";
}

function kindOf(v: BencodeValue): string {
  if (typeof v === "bigint") return "an integer";
  if (v instanceof Uint8Array) return "a string";
  if (Array.isArray(v)) return "a list";
  return "a dictionary";
}

function join(prefix: string, key: string): string {
  return prefix === "" ? key : `${prefix}.${key}`;
}

function wrongType(ctx: Ctx, path: string, want: string, got: BencodeValue): DhtError {
  return new DhtError("wrong-type", path, `expected ${want}, got ${kindOf(got)}`, { ...ctx });
}

function required(ctx: Ctx, d: BencodeDict, key: string, prefix: string): BencodeValue {
  const v = d.get(key);
  if (v === undefined) {
    throw new DhtError("missing-key", join(prefix, key), `key "${key}" is missing`, { ...ctx });
  }
  return v;
}

function asBytes(ctx: Ctx, v: BencodeValue, path: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  throw wrongType(ctx, path, "a string", v);
}

function asDict(ctx: Ctx, v: BencodeValue, path: string): BencodeDict {
  if (isDict(v)) return v;
  throw wrongType(ctx, path, "a dictionary", v);
}

function optBytes(ctx: Ctx, d: BencodeDict, key: string, prefix: string): Uint8Array | undefined {
  const v = d.get(key);
  return v === undefined ? undefined : asBytes(ctx, v, join(prefix, key));
}

/** A 20-byte id under `key`, copied. */
function needId(ctx: Ctx, d: BencodeDict, key: string, prefix: string): Uint8Array {
  const path = join(prefix, key);
  const b = asBytes(ctx, required(ctx, d, key, prefix), path);
  if (b.length !== ID_BYTES) {
    throw new DhtError("bad-length", path, `expected ${ID_BYTES} bytes, got ${b.length}`, { ...ctx });
  }
  return b.slice();
}

function boundedBytes(ctx: Ctx, b: Uint8Array, max: number, path: string): Uint8Array {
  if (b.length > max) {
    throw new DhtError("too-long", path, `${b.length} bytes exceed the limit of ${max}`, { ...ctx });
  }
  return b.slice();
}

/** The IP address text of compact `bytes` (6 or 18), or null when the port is 0. */
function compactAddress(bytes: Uint8Array): PeerAddress | null {
  return decodeCompactPeers(bytes, bytes.length === 6 ? 4 : 6)[0] ?? null;
}

function nodesOf(
  ctx: Ctx,
  bytes: Uint8Array,
  family: 4 | 6,
  max: number,
  path: string,
): NodeInfo[] {
  const size = family === 4 ? COMPACT_NODE_V4_BYTES : COMPACT_NODE_V6_BYTES;
  if (bytes.length % size !== 0) {
    throw new DhtError(
      "bad-length",
      path,
      `${bytes.length} bytes is not a multiple of ${size} (compact IPv${family} nodes)`,
      { ...ctx },
    );
  }
  const count = bytes.length / size;
  if (count > max) throw new DhtError("too-many", path, `${count} nodes exceed the limit of ${max}`, { ...ctx });
  const out: NodeInfo[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * size;
    const address = compactAddress(bytes.subarray(o + ID_BYTES, o + size));
    if (address === null) throw new DhtError("bad-port", `${path}[${i}]`, "node has port 0", { ...ctx });
    out.push({ id: bytes.slice(o, o + ID_BYTES), address });
  }
  return out;
}

function peerOf(ctx: Ctx, bytes: Uint8Array, path: string): PeerAddress {
  if (bytes.length !== 6 && bytes.length !== 18) {
    throw new DhtError("bad-length", path, `compact peer of ${bytes.length} bytes, expected 6 or 18`, { ...ctx });
  }
  const address = compactAddress(bytes);
  if (address === null) throw new DhtError("bad-port", path, "peer has port 0", { ...ctx });
  return address;
}

function wantOf(ctx: Ctx, a: BencodeDict): readonly KrpcWant[] | undefined {
  const v = a.get("want");
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw wrongType(ctx, "a.want", "a list", v);
  if (v.length > MAX_KRPC_WANT_ENTRIES) {
    throw new DhtError("too-many", "a.want", `${v.length} entries exceed the limit of ${MAX_KRPC_WANT_ENTRIES}`, {
      ...ctx,
    });
  }
  const out: KrpcWant[] = [];
  v.forEach((item, i) => {
    const b = asBytes(ctx, item, `a.want[${i}]`);
    // unknown families are skipped: a later BEP may add some
    if (b.length === 2 && b[0] === 0x6e && (b[1] === 0x34 || b[1] === 0x36)) out.push(b[1] === 0x34 ? "n4" : "n6");
  });
  return out;
}

function portOf(ctx: Ctx, a: BencodeDict, impliedPort: boolean): number {
  const v = required(ctx, a, "port", "a");
  if (typeof v !== "bigint") throw wrongType(ctx, "a.port", "an integer", v);
  const min = impliedPort ? 0n : 1n;
  if (v < min || v > 65535n) {
    throw new DhtError("bad-port", "a.port", `port ${v} is outside ${min}-65535`, { ...ctx });
  }
  return Number(v);
}

function impliedPortOf(ctx: Ctx, a: BencodeDict): boolean | undefined {
  const v = a.get("implied_port");
  if (v === undefined) return undefined;
  if (typeof v !== "bigint") throw wrongType(ctx, "a.implied_port", "an integer", v);
  if (v !== 0n && v !== 1n) throw new DhtError("bad-value", "a.implied_port", `expected 0 or 1, got ${v}`, { ...ctx });
  return v === 1n;
}

/** The optional `v`: kept when a string within its limit, dropped otherwise (it only informs). */
function versionOf(top: BencodeDict): { v?: Uint8Array } {
  const v = top.get("v");
  return v instanceof Uint8Array && v.length <= MAX_KRPC_VERSION_BYTES ? { v: v.slice() } : {};
}

function decodeQuery(ctx: Ctx, top: BencodeDict, common: { t: Uint8Array; v?: Uint8Array }): KrpcMessage {
  const qBytes = asBytes(ctx, required(ctx, top, "q", ""), "q");
  if (qBytes.length > MAX_KRPC_QUERY_NAME_BYTES) {
    throw new DhtError(
      "too-long",
      "q",
      `query name of ${qBytes.length} bytes exceeds the limit of ${MAX_KRPC_QUERY_NAME_BYTES}`,
      { ...ctx },
    );
  }
  const name = latin1Key(qBytes);
  if (name !== "ping" && name !== "find_node" && name !== "get_peers" && name !== "announce_peer") {
    return { y: "q", q: "unknown", ...common, method: name };
  }
  const a = asDict(ctx, required(ctx, top, "a", ""), "a");
  const id = needId(ctx, a, "id", "a");
  const ro = top.get("ro");
  const base = { y: "q" as const, ...common, id, ...(typeof ro === "bigint" ? { ro: ro !== 0n } : {}) };
  switch (name) {
    case "ping":
      return { ...base, q: "ping" };
    case "find_node": {
      const target = needId(ctx, a, "target", "a");
      const want = wantOf(ctx, a);
      return { ...base, q: "find_node", target, ...(want === undefined ? {} : { want }) };
    }
    case "get_peers": {
      const infoHash = needId(ctx, a, "info_hash", "a");
      const want = wantOf(ctx, a);
      return { ...base, q: "get_peers", infoHash, ...(want === undefined ? {} : { want }) };
    }
    case "announce_peer": {
      const infoHash = needId(ctx, a, "info_hash", "a");
      const impliedPort = impliedPortOf(ctx, a);
      const port = portOf(ctx, a, impliedPort === true);
      const token = boundedBytes(
        ctx,
        asBytes(ctx, required(ctx, a, "token", "a"), "a.token"),
        MAX_KRPC_TOKEN_BYTES,
        "a.token",
      );
      return {
        ...base,
        q: "announce_peer",
        infoHash,
        port,
        ...(impliedPort === undefined ? {} : { impliedPort }),
        token,
      };
    }
  }
}

function decodeResponse(ctx: Ctx, top: BencodeDict, common: { t: Uint8Array; v?: Uint8Array }): KrpcResponse {
  const r = asDict(ctx, required(ctx, top, "r", ""), "r");
  const id = needId(ctx, r, "id", "r");
  const n4 = optBytes(ctx, r, "nodes", "r");
  const n6 = optBytes(ctx, r, "nodes6", "r");
  const nodes = n4 === undefined ? undefined : nodesOf(ctx, n4, 4, MAX_KRPC_NODES, "r.nodes");
  const nodes6 = n6 === undefined ? undefined : nodesOf(ctx, n6, 6, MAX_KRPC_NODES, "r.nodes6");
  let values: PeerAddress[] | undefined;
  const rawValues = r.get("values");
  if (rawValues !== undefined) {
    if (!Array.isArray(rawValues)) throw wrongType(ctx, "r.values", "a list", rawValues);
    if (rawValues.length > MAX_KRPC_VALUES) {
      throw new DhtError(
        "too-many",
        "r.values",
        `${rawValues.length} peers exceed the limit of ${MAX_KRPC_VALUES}`,
        { ...ctx },
      );
    }
    values = rawValues.map((item, i) => peerOf(ctx, asBytes(ctx, item, `r.values[${i}]`), `r.values[${i}]`));
  }
  const rawToken = optBytes(ctx, r, "token", "r");
  const token = rawToken === undefined ? undefined : boundedBytes(ctx, rawToken, MAX_KRPC_TOKEN_BYTES, "r.token");
  // BEP 42's `ip` only informs (external address votes): an unusable one is dropped, not fatal
  const rawIp = top.get("ip");
  const ip = rawIp instanceof Uint8Array && (rawIp.length === 6 || rawIp.length === 18) ? compactAddress(rawIp) : null;
  return {
    y: "r",
    ...common,
    id,
    ...(nodes === undefined ? {} : { nodes }),
    ...(nodes6 === undefined ? {} : { nodes6 }),
    ...(values === undefined ? {} : { values }),
    ...(token === undefined ? {} : { token }),
    ...(ip === null ? {} : { ip }),
  };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * An error message as text: UTF-8 when valid, else its ASCII with every other byte as `?`. Never longer in UTF-8
 * than in the packet, so whatever decodes re-encodes within the limits.
 */
function errorText(ctx: Ctx, b: Uint8Array, path: string): string {
  if (b.length > MAX_KRPC_ERROR_MESSAGE_BYTES) {
    throw new DhtError(
      "too-long",
      path,
      `error message of ${b.length} bytes exceeds the limit of ${MAX_KRPC_ERROR_MESSAGE_BYTES}`,
      { ...ctx },
    );
  }
  try {
    return strictUtf8.decode(b);
  } catch {
    return String.fromCharCode(...b.map((x) => (x < 0x80 ? x : 0x3f)));
  }
}

function decodeErrorReply(ctx: Ctx, top: BencodeDict, common: { t: Uint8Array; v?: Uint8Array }): KrpcErrorReply {
  const e = required(ctx, top, "e", "");
  if (e instanceof Uint8Array) {
    // a few clients send the message alone
    return { y: "e", ...common, code: KRPC_ERROR_CODE.generic, message: errorText(ctx, e, "e") };
  }
  if (!Array.isArray(e)) throw wrongType(ctx, "e", "a list", e);
  if (e.length === 0) throw new DhtError("bad-value", "e", "error list is empty", { ...ctx });
  const code = e[0];
  if (typeof code !== "bigint") throw wrongType(ctx, "e[0]", "an integer", code);
  if (code < BigInt(Number.MIN_SAFE_INTEGER) || code > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new DhtError("bad-value", "e[0]", `error code ${code} is beyond a safe integer`, { ...ctx });
  }
  const message = e.length > 1 ? errorText(ctx, asBytes(ctx, e[1], "e[1]"), "e[1]") : "";
  return { y: "e", ...common, code: Number(code), message };
}

/**
 * Decodes one KRPC datagram.
 * @param bytes The whole UDP payload; the result holds copies, never views into it.
 * @returns The message: a known query, an unknown query (answer it with error 204), a response or an error.
 * @throws {DhtError} when the packet is too long, not bencode, or breaks the rules above; `path` says where, and
 *   `transactionId` and `messageType` are set when they were read first.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const text = new TextEncoder();
 * const ping = text.encode("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe");
 * eq(decodeKrpc(ping), { y: "q", q: "ping", t: text.encode("aa"), id: text.encode("abcdefghij0123456789") });
 * eq(encodeKrpc(decodeKrpc(ping)), ping);
 * const bye = text.encode("d1:eli204e14:Method Unknowne1:t2:aa1:y1:ee");
 * eq(decodeKrpc(bye), { y: "e", t: text.encode("aa"), code: 204, message: "Method Unknown" });
 * ```
 */
export function decodeKrpc(bytes: Uint8Array): KrpcMessage {
  const ctx: Ctx = {};
  if (bytes.length > MAX_KRPC_PACKET_BYTES) {
    throw new DhtError("too-long", "", `packet of ${bytes.length} bytes exceeds the limit of ${MAX_KRPC_PACKET_BYTES}`);
  }
  let top: BencodeValue;
  try {
    top = decodeBencode(bytes, { allowUnsorted: true, maxDepth: MAX_KRPC_DEPTH, spanDepth: 0 }).value;
  } catch (e) {
    if (e instanceof BencodeError) throw new DhtError("bad-bencode", "", e.message, {}, { cause: e });
    throw e;
  }
  const dict = asDict(ctx, top, "");
  const t = asBytes(ctx, required(ctx, dict, "t", ""), "t");
  if (t.length === 0) throw new DhtError("bad-length", "t", "transaction id is empty");
  ctx.transactionId = boundedBytes(ctx, t, MAX_KRPC_TRANSACTION_ID_BYTES, "t");
  const y = asBytes(ctx, required(ctx, dict, "y", ""), "y");
  const type = y.length === 1 ? String.fromCharCode(y[0]) : "";
  if (type !== "q" && type !== "r" && type !== "e") {
    throw new DhtError(
      "bad-value",
      "y",
      `message type ${JSON.stringify(latin1Key(y.subarray(0, 8)))} is not q, r or e`,
      {
        ...ctx,
      },
    );
  }
  ctx.messageType = type;
  const common = { t: ctx.transactionId, ...versionOf(dict) };
  switch (type) {
    case "q":
      return decodeQuery(ctx, dict, common);
    case "r":
      return decodeResponse(ctx, dict, common);
    case "e":
      return decodeErrorReply(ctx, dict, common);
  }
}

/**
 * Decodes compact node info: 26 bytes a node for IPv4 (BEP 5), 38 for IPv6 (BEP 32).
 * @param bytes The concatenated entries.
 * @param family 4 or 6.
 * @param options `max`: the most nodes accepted (default {@linkcode MAX_KRPC_NODES}); `path`: where the bytes came
 *   from, for errors.
 * @returns The nodes, in order; ids are copies.
 * @throws {DhtError} `bad-length` when the length is not a multiple of the entry size, `too-many` past `max`,
 *   `bad-port` for a node with port 0.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const entry = new Uint8Array(26).fill(7);
 * entry.set([127, 0, 0, 1, 0x1a, 0xe1], 20);
 * eq(decodeCompactNodes(entry, 4), [{ id: new Uint8Array(20).fill(7), address: { host: "127.0.0.1", port: 6881 } }]);
 * ```
 */
export function decodeCompactNodes(
  bytes: Uint8Array,
  family: 4 | 6,
  options: { readonly max?: number; readonly path?: string } = {},
): NodeInfo[] {
  return nodesOf({}, bytes, family, options.max ?? MAX_KRPC_NODES, options.path ?? "");
}

/**
 * Decodes one compact peer: 6 bytes for IPv4, 18 for IPv6, as in `values` (BEP 5, BEP 32) and `ip` (BEP 42).
 * @throws {DhtError} `bad-length` for any other size, `bad-port` for port 0.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(decodeCompactPeer(new Uint8Array([10, 0, 0, 1, 0, 80])), { host: "10.0.0.1", port: 80 });
 * ```
 */
export function decodeCompactPeer(bytes: Uint8Array, path = ""): PeerAddress {
  return peerOf({}, bytes, path);
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding

const utf8 = new TextEncoder();

function refuse(detail: string): RangeError {
  return new RangeError(`Cannot encode KRPC message: ${detail}`);
}

function checkId(id: Uint8Array, what: string): Uint8Array {
  if (id.length !== ID_BYTES) throw refuse(`${what} is ${id.length} bytes, expected ${ID_BYTES}`);
  return id;
}

function checkPort(port: number, min: number, what: string): void {
  if (!Number.isInteger(port) || port < min || port > 65535) {
    throw refuse(`${what} port ${port} is outside ${min}-65535`);
  }
}

function checkLength(b: Uint8Array, min: number, max: number, what: string): Uint8Array {
  if (b.length < min || b.length > max) throw refuse(`${what} of ${b.length} bytes is outside ${min}-${max}`);
  return b;
}

/** The compact address bytes (4 or 16 and a port) of `a`, or a RangeError when its host is not of that family. */
function addressBytes(a: PeerAddress, family: 4 | 6, what: string): Uint8Array {
  const ip = family === 4 ? ipv4Bytes(a.host) : ipv6Bytes(a.host);
  if (ip === null) throw refuse(`${what} host ${JSON.stringify(a.host)} is not an IPv${family} address`);
  checkPort(a.port, 1, what);
  const out = new Uint8Array(ip.length + 2);
  out.set(ip);
  out[ip.length] = a.port >>> 8;
  out[ip.length + 1] = a.port & 0xff;
  return out;
}

/**
 * Encodes nodes as compact node info: 26 bytes each for IPv4, 38 for IPv6.
 * @throws {RangeError} for an id that is not 20 bytes, a host that is not an address of `family`, or a port outside
 *   1–65535.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const nodes = [{ id: new Uint8Array(20), address: { host: "::1", port: 6881 } }];
 * eq(encodeCompactNodes(nodes, 6).length, 38);
 * ```
 */
export function encodeCompactNodes(nodes: readonly NodeInfo[], family: 4 | 6): Uint8Array {
  const size = family === 4 ? COMPACT_NODE_V4_BYTES : COMPACT_NODE_V6_BYTES;
  const out = new Uint8Array(nodes.length * size);
  nodes.forEach((n, i) => {
    out.set(checkId(n.id, "node id"), i * size);
    out.set(addressBytes(n.address, family, "node"), i * size + ID_BYTES);
  });
  return out;
}

/**
 * Encodes one peer compactly: 6 bytes for an IPv4 host, 18 for an IPv6 host.
 * @throws {RangeError} for a host that is not an IP address, or a port outside 1–65535.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(encodeCompactPeer({ host: "10.0.0.1", port: 80 }), new Uint8Array([10, 0, 0, 1, 0, 80]));
 * ```
 */
export function encodeCompactPeer(peer: PeerAddress): Uint8Array {
  return addressBytes(peer, peer.host.includes(":") ? 6 : 4, "peer");
}

function checkCount(n: number, max: number, what: string): void {
  if (n > max) throw refuse(`${n} ${what} exceed the limit of ${max}`);
}

function encodeArgs(msg: KrpcQuery): Map<string, BencodeInput> {
  const a = new Map<string, BencodeInput>([["id", checkId(msg.id, "id")]]);
  const want = (w: readonly KrpcWant[] | undefined): void => {
    if (w === undefined) return;
    checkCount(w.length, MAX_KRPC_WANT_ENTRIES, "want entries");
    a.set("want", [...w]);
  };
  switch (msg.q) {
    case "ping":
      break;
    case "find_node":
      a.set("target", checkId(msg.target, "target"));
      want(msg.want);
      break;
    case "get_peers":
      a.set("info_hash", checkId(msg.infoHash, "info_hash"));
      want(msg.want);
      break;
    case "announce_peer":
      a.set("info_hash", checkId(msg.infoHash, "info_hash"));
      checkPort(msg.port, msg.impliedPort === true ? 0 : 1, "announce");
      a.set("port", msg.port);
      if (msg.impliedPort !== undefined) a.set("implied_port", msg.impliedPort ? 1 : 0);
      a.set("token", checkLength(msg.token, 0, MAX_KRPC_TOKEN_BYTES, "token"));
      break;
  }
  return a;
}

function encodeResponse(msg: KrpcResponse, top: Map<string, BencodeInput>): void {
  const r = new Map<string, BencodeInput>([["id", checkId(msg.id, "id")]]);
  if (msg.nodes !== undefined) {
    checkCount(msg.nodes.length, MAX_KRPC_NODES, "IPv4 nodes");
    r.set("nodes", encodeCompactNodes(msg.nodes, 4));
  }
  if (msg.nodes6 !== undefined) {
    checkCount(msg.nodes6.length, MAX_KRPC_NODES, "IPv6 nodes");
    r.set("nodes6", encodeCompactNodes(msg.nodes6, 6));
  }
  if (msg.values !== undefined) {
    checkCount(msg.values.length, MAX_KRPC_VALUES, "peers");
    r.set("values", msg.values.map(encodeCompactPeer));
  }
  if (msg.token !== undefined) r.set("token", checkLength(msg.token, 0, MAX_KRPC_TOKEN_BYTES, "token"));
  top.set("r", r);
  if (msg.ip !== undefined) top.set("ip", encodeCompactPeer(msg.ip));
}

/**
 * Encodes a KRPC message canonically (keys sorted, only the keys the message holds).
 * @param msg Any message {@linkcode decodeKrpc} returns; an unknown query is sent with its name and no arguments.
 * @returns The datagram, at most {@linkcode MAX_KRPC_PACKET_BYTES} bytes.
 * @throws {RangeError} when the message breaks a rule {@linkcode decodeKrpc} enforces (id length, port, a count or
 *   length over its limit, an unknown query named like a known one) or would exceed the packet limit: whatever this
 *   sends, a strict node accepts.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const text = new TextEncoder();
 * const id = text.encode("abcdefghij0123456789");
 * const target = text.encode("mnopqrstuvwxyz123456");
 * const b = encodeKrpc({ y: "q", q: "find_node", t: text.encode("aa"), id, target, want: ["n4", "n6"] });
 * eq(
 *   new TextDecoder().decode(b),
 *   "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee1:q9:find_node1:t2:aa1:y1:qe",
 * );
 * ```
 */
export function encodeKrpc(msg: KrpcMessage): Uint8Array {
  const top = new Map<string, BencodeInput>();
  top.set("t", checkLength(msg.t, 1, MAX_KRPC_TRANSACTION_ID_BYTES, "transaction id"));
  top.set("y", msg.y);
  switch (msg.y) {
    case "q":
      if (msg.q === "unknown") {
        const known = ["ping", "find_node", "get_peers", "announce_peer"];
        if (known.includes(msg.method)) throw refuse(`unknown query named ${JSON.stringify(msg.method)}`);
        top.set("q", checkLength(keyBytes(msg.method), 0, MAX_KRPC_QUERY_NAME_BYTES, "query name"));
      } else {
        top.set("q", msg.q);
        top.set("a", encodeArgs(msg));
        if (msg.ro !== undefined) top.set("ro", msg.ro ? 1 : 0);
      }
      break;
    case "r":
      encodeResponse(msg, top);
      break;
    case "e":
      if (!Number.isSafeInteger(msg.code)) throw refuse(`error code ${msg.code} is not a safe integer`);
      top.set("e", [msg.code, checkLength(utf8.encode(msg.message), 0, MAX_KRPC_ERROR_MESSAGE_BYTES, "error message")]);
      break;
  }
  if (msg.v !== undefined) top.set("v", checkLength(msg.v, 0, MAX_KRPC_VERSION_BYTES, "client version"));
  const out = encodeBencode(top);
  if (out.length > MAX_KRPC_PACKET_BYTES) {
    throw refuse(`${out.length} bytes exceed the packet limit of ${MAX_KRPC_PACKET_BYTES}`);
  }
  return out;
}
