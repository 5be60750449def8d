/**
 * The listening socket: accepts incoming peers on one port (IPv6 and IPv4 on a dual-stack socket, else IPv4 only),
 * reads each handshake and routes it to the torrent with that info-hash; unknown info-hashes are refused.
 * @module
 */
import type { PeerAddress } from "../address.ts";
import type { Handshake } from "../wire/handshake.ts";
import { readHandshake } from "./peer_conn.ts";

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
    const { theirs, leftover } = await readHandshake(conn, INCOMING_HANDSHAKE_TIMEOUT_MS);
    const hex = Array.from(theirs.infoHash, (b) => b.toString(16).padStart(2, "0")).join("");
    const accept = this.#routes.get(hex);
    if (!accept || !accept(conn, theirs, leftover, from)) conn.close();
  }

  /** Closes the socket; connections already handed to torrents stay open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    await this.#loop;
  }
}
