/**
 * Message Stream Encryption (MSE/PE, the "encrypted handshake" of Azureus, libtorrent, aria2c and others): the
 * Diffie-Hellman exchange, the RC4 keystream, the hashes that locate and identify the handshake, and a receiver
 * that parses what the connecting side sends. Pure: randomness and bytes come in, values and bytes go out.
 *
 * btfetch accepts the encrypted handshake and selects plaintext for the payload stream when the peer offers it
 * (libtorrent and aria2c do by default), so only the handshake itself is encrypted.
 * @module
 */
import { concatBytes } from "../bytes.ts";
import { sha1 as sha1Of } from "../sha1.ts";
import { WireError } from "./frame.ts";
import { equalBytes } from "../bytes.ts";

/** The 768-bit prime of MSE. */
export const MSE_PRIME: bigint = BigInt(
  "0xFFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A4" +
    "31B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563",
);
/** The generator. */
export const MSE_GENERATOR = 2n;
/** Bytes of a public key. */
export const MSE_KEY_BYTES = 96;
/** The most padding either side may send (PadA, PadB, PadC, PadD). */
export const MSE_MAX_PAD = 512;
/** The most bytes of initial payload (IA) we accept: a BitTorrent handshake and a little more. */
export const MSE_MAX_IA = 68 + 4096;
/** crypto_provide / crypto_select bits. */
export const CRYPTO_PLAINTEXT = 0x01;
export const CRYPTO_RC4 = 0x02;

const enc = new TextEncoder();

function sha1(...parts: Uint8Array[]): Uint8Array {
  return sha1Of(concatBytes(parts));
}

function toBytes(n: bigint, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

function fromBytes(b: Uint8Array): bigint {
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n;
}

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let r = 1n;
  base %= mod;
  while (exp > 0n) {
    if (exp & 1n) r = (r * base) % mod;
    base = (base * base) % mod;
    exp >>= 1n;
  }
  return r;
}

/**
 * Our public key for the private exponent `secret` (160 random bits are plenty, as the spec says).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const a = 0x1234567890abcdefn, b = 0xfedcba0987654321n;
 * eq(sharedSecret(publicKey(b), a), sharedSecret(publicKey(a), b));
 * ```
 */
export function publicKey(secret: bigint): Uint8Array {
  return toBytes(modPow(MSE_GENERATOR, secret, MSE_PRIME), MSE_KEY_BYTES);
}

/** The shared secret S from the other side's public key. */
export function sharedSecret(theirPublic: Uint8Array, secret: bigint): Uint8Array {
  return toBytes(modPow(fromBytes(theirPublic), secret, MSE_PRIME), MSE_KEY_BYTES);
}

/** HASH('req1', S): marks where the initiator's crypto header starts. */
export function req1(s: Uint8Array): Uint8Array {
  return sha1(enc.encode("req1"), s);
}

/** HASH('req2', SKEY): names the torrent (SKEY is its info-hash) without revealing it. */
export function req2(skey: Uint8Array): Uint8Array {
  return sha1(enc.encode("req2"), skey);
}

/** HASH('req3', S), xored with {@linkcode req2} on the wire. */
export function req3(s: Uint8Array): Uint8Array {
  return sha1(enc.encode("req3"), s);
}

/**
 * RC4, as MSE uses it: keyed with HASH('keyA' or 'keyB', S, SKEY), the first 1024 bytes of keystream discarded.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const rc4 = new Rc4(new TextEncoder().encode("Key"), 0);
 * eq(rc4.apply(new TextEncoder().encode("Plaintext")), new Uint8Array([0xbb, 0xf3, 0x16, 0xe8, 0xd9, 0x40, 0xaf, 0x0a, 0xd3]));
 * ```
 */
export class Rc4 {
  readonly #s = new Uint8Array(256);
  #i = 0;
  #j = 0;

  /** Keys the cipher and discards `discard` bytes of keystream (MSE: 1024). */
  constructor(key: Uint8Array, discard = 1024) {
    const s = this.#s;
    for (let i = 0; i < 256; i++) s[i] = i;
    for (let i = 0, j = 0; i < 256; i++) {
      j = (j + s[i] + key[i % key.length]) & 0xff;
      const t = s[i];
      s[i] = s[j];
      s[j] = t;
    }
    if (discard > 0) this.apply(new Uint8Array(discard));
  }

  /** Encrypts or decrypts `data` (the same operation), returning a new array. */
  apply(data: Uint8Array): Uint8Array {
    const out = new Uint8Array(data.length);
    const s = this.#s;
    let i = this.#i;
    let j = this.#j;
    for (let k = 0; k < data.length; k++) {
      i = (i + 1) & 0xff;
      j = (j + s[i]) & 0xff;
      const t = s[i];
      s[i] = s[j];
      s[j] = t;
      out[k] = data[k] ^ s[(s[i] + s[j]) & 0xff];
    }
    this.#i = i;
    this.#j = j;
    return out;
  }
}

/** The RC4 for bytes the initiator (A) sends, and for bytes the receiver (B) sends. */
export function mseCiphers(s: Uint8Array, skey: Uint8Array): { readonly a: Rc4; readonly b: Rc4 } {
  return {
    a: new Rc4(sha1(enc.encode("keyA"), s, skey)),
    b: new Rc4(sha1(enc.encode("keyB"), s, skey)),
  };
}

/** Whether bytes that opened a connection are a plain BitTorrent handshake rather than an MSE public key. */
export function looksLikePlainHandshake(first: Uint8Array): boolean {
  const proto = "\x13BitTorrent protocol";
  const n = Math.min(first.length, proto.length);
  for (let i = 0; i < n; i++) if (first[i] !== proto.charCodeAt(i)) return false;
  return true;
}

/** What the receiver learnt from the initiator's step 3. */
export interface MseAccepted {
  /** The info-hash the initiator named. */
  readonly infoHash: Uint8Array;
  /** The crypto methods it offers (bits). */
  readonly provide: number;
  /** The decrypted initial payload (normally the BitTorrent handshake). */
  readonly ia: Uint8Array;
  /** Bytes after the initial payload, as they arrived (still under the initiator's cipher if RC4 is chosen). */
  readonly rest: Uint8Array;
  /** The initiator's cipher, positioned after IA. */
  readonly cipherA: Rc4;
  /** Our cipher, for step 4. */
  readonly cipherB: Rc4;
}

/** The outcome of parsing what arrived so far after the initiator's public key. */
export type MseStep = { readonly kind: "need" } | { readonly kind: "done"; readonly value: MseAccepted };

/**
 * Parses the initiator's step 3 (`buf` starts right after its 96-byte public key): finds HASH('req1', S) within the
 * padding, identifies the torrent among `infoHashes` by HASH('req2') xor HASH('req3'), and decrypts the crypto
 * header and the initial payload.
 * @throws {WireError} `bad-handshake` when no sync is found within the padding, the torrent is unknown, the
 *   verification constant is wrong, or a length is out of bounds.
 */
export function parseInitiatorStep3(buf: Uint8Array, s: Uint8Array, infoHashes: readonly Uint8Array[]): MseStep {
  const sync = req1(s);
  let at = -1;
  const limit = Math.min(buf.length - 20, MSE_MAX_PAD);
  for (let i = 0; i <= limit; i++) {
    let ok = true;
    for (let k = 0; k < 20; k++) {
      if (buf[i + k] !== sync[k]) {
        ok = false;
        break;
      }
    }
    if (ok) {
      at = i;
      break;
    }
  }
  if (at < 0) {
    if (buf.length >= MSE_MAX_PAD + 20) throw new WireError("bad-handshake", 0, "no MSE sync within the padding");
    return { kind: "need" };
  }
  let p = at + 20;
  if (buf.length < p + 20 + 14) return { kind: "need" };
  const x = req3(s);
  const named = buf.subarray(p, p + 20).map((b, i) => b ^ x[i]);
  const infoHash = infoHashes.find((h) => equalBytes(req2(h), named));
  if (!infoHash) throw new WireError("bad-handshake", p, "MSE handshake for a torrent we do not have");
  p += 20;
  // decrypt on a copy each time, so a partial read can be retried with more bytes
  const { a, b } = mseCiphers(s, infoHash);
  const head = a.apply(buf.subarray(p, p + 14));
  for (let i = 0; i < 8; i++) {
    if (head[i] !== 0) throw new WireError("bad-handshake", p + i, "MSE verification constant is not zero");
  }
  const provide = ((head[8] << 24) | (head[9] << 16) | (head[10] << 8) | head[11]) >>> 0;
  const padC = (head[12] << 8) | head[13];
  if (padC > MSE_MAX_PAD) throw new WireError("bad-handshake", p + 12, `MSE PadC of ${padC} bytes`);
  p += 14;
  if (buf.length < p + padC + 2) return { kind: "need" };
  a.apply(buf.subarray(p, p + padC));
  p += padC;
  const lenBytes = a.apply(buf.subarray(p, p + 2));
  const iaLen = (lenBytes[0] << 8) | lenBytes[1];
  if (iaLen > MSE_MAX_IA) throw new WireError("bad-handshake", p, `MSE initial payload of ${iaLen} bytes`);
  p += 2;
  if (buf.length < p + iaLen) return { kind: "need" };
  const ia = a.apply(buf.subarray(p, p + iaLen));
  p += iaLen;
  return { kind: "done", value: { infoHash, provide, ia, rest: buf.slice(p), cipherA: a, cipherB: b } };
}

/** The receiver's step 4 header: ENCRYPT(VC, crypto_select, len(PadD) = 0). */
export function receiverStep4(cipherB: Rc4, select: number): Uint8Array {
  const plain = new Uint8Array(14);
  plain[8] = select >>> 24;
  plain[9] = select >>> 16;
  plain[10] = select >>> 8;
  plain[11] = select;
  return cipherB.apply(plain);
}

/**
 * The initiator's step 3, for tests and a future outgoing side: sync, torrent name, and the encrypted header with
 * `provide`, no PadC, and `ia`.
 */
export function initiatorStep3(s: Uint8Array, infoHash: Uint8Array, provide: number, ia: Uint8Array): Uint8Array {
  const { a } = mseCiphers(s, infoHash);
  const x = req3(s);
  const named = req2(infoHash).map((b, i) => b ^ x[i]);
  const head = new Uint8Array(14 + 2);
  head[8] = provide >>> 24;
  head[9] = provide >>> 16;
  head[10] = provide >>> 8;
  head[11] = provide;
  head[14] = ia.length >>> 8;
  head[15] = ia.length & 0xff;
  const out = new Uint8Array(20 + 20 + 16 + ia.length);
  out.set(req1(s), 0);
  out.set(named, 20);
  out.set(a.apply(head), 40);
  out.set(a.apply(ia), 56);
  return out;
}
