/**
 * The listening socket: accepts incoming peers on one port (IPv6 and IPv4 on a dual-stack socket, else IPv4 only),
 * reads each handshake and routes it to the torrent with that info-hash; unknown info-hashes are refused.
 * @module
 */
import type { PeerAddress } from "../address.ts";
import type { Handshake } from "../wire/handshake.ts";
import { WireError } from "../wire/frame.ts";
import {
  CRYPTO_PLAINTEXT,
  looksLikePlainHandshake,
  MSE_KEY_BYTES,
  MSE_MAX_IA,
  MSE_MAX_PAD,
  parseInitiatorStep3,
  publicKey,
  receiverStep4,
  sharedSecret,
} from "../wire/mse.ts";
import { readHandshake, readUntil, writeAll } from "./peer_conn.ts";
import { fromHex, toHex } from "../bytes.ts";

/** How long an incoming peer has to send its handshake. */
export const INCOMING_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Takes an incoming peer whose handshake named this torrent; returns false to refuse it (e.g. no free slot). */
export type AcceptPeer = (conn: Deno.TcpConn, theirs: Handshake, leftover: Uint8Array, from: PeerAddress) => boolean;

/** A bound listening socket that routes incoming peers by info-hash. */
export class Listener {
  readonly #listener: Deno.TcpListener;
  readonly #routes = new Map<string, AcceptPeer>();
  readonly #loop: Promise<void>;
  #closed = false;

  private constructor(listener: Deno.TcpListener) {
    this.#listener = listener;
    this.#loop = this.#accept();
  }

  /**
   * Binds `port` (0: any free port) on every address, dual-stack where the system allows.
   * @throws {Deno.errors.AddrInUse} when the port is taken.
   */
  static open(port: number): Listener {
    let l: Deno.TcpListener;
    try {
      l = Deno.listen({ hostname: "::", port, transport: "tcp" });
    } catch (e) {
      if (e instanceof Deno.errors.AddrInUse) throw e;
      l = Deno.listen({ hostname: "0.0.0.0", port, transport: "tcp" });
    }
    return new Listener(l);
  }

  /** The port actually bound. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Routes handshakes for `infoHashHex` to `accept`. */
  register(infoHashHex: string, accept: AcceptPeer): void {
    this.#routes.set(infoHashHex, accept);
  }

  /** Stops routing `infoHashHex`. */
  unregister(infoHashHex: string): void {
    this.#routes.delete(infoHashHex);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        if (this.#closed) return;
        continue;
      }
      this.#route(conn).catch(() => {
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  }

  async #route(conn: Deno.TcpConn): Promise<void> {
    conn.setNoDelay(true);
    const r = conn.remoteAddr as Deno.NetAddr;
    const from = { host: r.hostname.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1"), port: r.port };
    const deadline = Date.now() + INCOMING_HANDSHAKE_TIMEOUT_MS;
    const left = () => Math.max(1, deadline - Date.now());
    // a plain handshake starts with its protocol name; anything else may be an MSE public key
    const first = await readUntil(conn, left(), new Uint8Array(0), (b) => b.length >= 20 ? b.slice() : null, 4096);
    let initial: Uint8Array = first;
    if (!looksLikePlainHandshake(first)) initial = await this.#acceptMse(conn, first, left);
    const { theirs, leftover } = await readHandshake(conn, left(), undefined, initial);
    const hex = toHex(theirs.infoHash);
    const accept = this.#routes.get(hex);
    if (!accept || !accept(conn, theirs, leftover, from)) conn.close();
  }

  /**
   * The receiving side of MSE/PE (see `wire/mse.ts`): answers the initiator's public key, finds which of our
   * torrents it names, selects plaintext for the payload stream, and returns the plaintext that follows (the
   * BitTorrent handshake first). A peer that offers only RC4 for the payload is refused.
   */
  async #acceptMse(conn: Deno.TcpConn, first: Uint8Array, left: () => number): Promise<Uint8Array> {
    const theirKey = await readUntil(conn, left(), first, (b) => b.length >= MSE_KEY_BYTES ? b.slice() : null, 4096);
    const secretBytes = crypto.getRandomValues(new Uint8Array(20));
    const secret = secretBytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n);
    const pad = crypto.getRandomValues(new Uint8Array(Math.floor(Math.random() * 64)));
    const ours = new Uint8Array(MSE_KEY_BYTES + pad.length);
    ours.set(publicKey(secret));
    ours.set(pad, MSE_KEY_BYTES);
    await writeAll(conn, ours);
    const s = sharedSecret(theirKey.subarray(0, MSE_KEY_BYTES), secret);
    const hashes = [...this.#routes.keys()].map(fromHex);
    const step = await readUntil(conn, left(), theirKey.slice(MSE_KEY_BYTES), (b) => {
      const r = parseInitiatorStep3(b, s, hashes);
      return r.kind === "done" ? r.value : null;
    }, MSE_MAX_PAD * 2 + MSE_MAX_IA + 64);
    if ((step.provide & CRYPTO_PLAINTEXT) === 0) {
      throw new WireError("bad-handshake", 0, "the peer wants an RC4 payload stream, which btfetch does not offer");
    }
    await writeAll(conn, receiverStep4(step.cipherB, CRYPTO_PLAINTEXT));
    const out = new Uint8Array(step.ia.length + step.rest.length);
    out.set(step.ia);
    out.set(step.rest, step.ia.length);
    return out;
  }

  /** Closes the socket; connections already handed to torrents stay open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    await this.#loop;
  }
}
