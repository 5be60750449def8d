/**
 * Peers for the PEX (BEP 11, `ut_pex`) interop tests: a fake peer written here that holds no piece and tells btfetch
 * about other peers ({@linkcode pexTeller}), and a python3-libtorrent peer with peer exchange on (`lt_pex.py`) whose
 * peer list, with libtorrent's source bits, is read from its output ({@linkcode startLtPex}). Loopback only; every
 * wait is bounded and `close()` ends everything.
 * @module
 */
import { encodeCompactPeers, type PeerAddress } from "../../lib/address.ts";
import { encodeBencode } from "../../lib/bencode.ts";
import { Bitfield } from "../../lib/bitfield.ts";
import type { Metainfo } from "../../lib/metainfo.ts";
import { decodeExtHandshake, encodeExtHandshake, type ExtHandshake } from "../../lib/wire/extension.ts";
import { encodeHandshake, reservedBits, supportsFast } from "../../lib/wire/handshake.ts";
import { decodePex, type PexMessage, UT_PEX } from "../../lib/wire/pex.ts";
import type { Wire } from "../engine/_fake_peer.ts";
import { LineProcess, type RealPeer, sleep, SYSTEM_PYTHON } from "./_peers.ts";

const LT_PEX_SCRIPT = new URL("./lt_pex.py", import.meta.url).pathname;

/** The id we ask btfetch to use for ut_pex messages it sends us (in our extended handshake). */
export const FAKE_UT_PEX_ID = 7;

/** A ut_pex payload adding `peers` (IPv4) with no flags, built by hand so it may exceed btfetch's own limits. */
export function pexAdding(peers: readonly PeerAddress[]): Uint8Array {
  return encodeBencode(new Map([["added", encodeCompactPeers(peers, 4)]]));
}

/** What a {@linkcode pexTeller} saw and did, over all its connections. */
export interface TellerLog {
  /** Connections accepted (handshakes received). */
  connections: number;
  /** btfetch's extended handshakes. */
  readonly extHandshakes: ExtHandshake[];
  /** ut_pex messages we sent. */
  sent: number;
  /** ut_pex messages btfetch sent us, decoded. */
  readonly received: PexMessage[];
  /** Messages btfetch sent us that were not ut_pex, by type (for diagnostics). */
  readonly other: string[];
}

/** How a {@linkcode pexTeller} behaves. */
export interface TellerOptions {
  readonly meta: Metainfo;
  /** Our listen port, for `p` in our extended handshake (the FakePeer's port, read when a connection comes). */
  readonly listenPort: () => number;
  /** The `n`th ut_pex payload to send (from 0), or null to stop sending. */
  readonly payload: (n: number) => Uint8Array | null;
  /** The wait between two messages (the first goes right after btfetch's extended handshake). */
  readonly everyMs: number;
  /**
   * The extended message id to send ut_pex with when btfetch's extended handshake offers none (a peer ignoring
   * what btfetch offered); by default nothing is sent then.
   */
  readonly unsolicitedId?: number;
  readonly log: TellerLog;
}

/** A fresh, empty {@linkcode TellerLog}. */
export function tellerLog(): TellerLog {
  return { connections: 0, extHandshakes: [], sent: 0, received: [], other: [] };
}

/**
 * A FakePeer handler for a peer that has no piece and speaks ut_pex: handshake with the extension bit (and the Fast
 * bit when btfetch sets it), an extended handshake offering ut_pex, have-none (or an all-zero bitfield), then, once
 * btfetch's extended handshake has come, the ut_pex messages of `payload` with btfetch's id, `everyMs` apart. It
 * never unchokes and reads (and logs) whatever btfetch sends until the connection ends.
 */
export function pexTeller(o: TellerOptions): (w: Wire) => Promise<void> {
  return async (w) => {
    const theirs = await w.handshake(5000);
    if (!theirs) return;
    o.log.connections++;
    const fast = supportsFast(theirs.reserved);
    const peerId = new TextEncoder().encode("-PX0001-pexfakepeer!");
    const ours = { reserved: reservedBits({ fast, extended: true }), infoHash: o.meta.infoHash, peerId };
    if (!await w.sendRaw(encodeHandshake(ours))) return;
    const ext = encodeExtHandshake({ m: new Map([[UT_PEX, FAKE_UT_PEX_ID]]), v: "pex-fake 1", p: o.listenPort() });
    if (!await w.send({ type: "extended", id: 0, payload: ext })) return;
    if (fast) await w.send({ type: "have-none" });
    else await w.send({ type: "bitfield", bits: new Bitfield(o.meta.pieceCount).bytes });

    let theirPexId: number | null = null;
    let sending: Promise<void> = Promise.resolve();
    const startSending = (id: number): void => {
      sending = (async () => {
        for (let n = 0;; n++) {
          const payload = o.payload(n);
          if (payload === null || w.closed) return;
          if (!await w.send({ type: "extended", id, payload })) return;
          o.log.sent++;
          if (await w.waitClosed(o.everyMs)) return;
        }
      })();
    };
    for (;;) {
      const m = await w.next(60_000);
      if (m === null || m === "timeout") break;
      if (m.type === "extended" && m.id === 0 && theirPexId === null) {
        const h = decodeExtHandshake(m.payload);
        o.log.extHandshakes.push(h);
        theirPexId = h.m.get(UT_PEX) ?? 0;
        const id = theirPexId !== 0 ? theirPexId : o.unsolicitedId;
        if (id !== undefined) startSending(id);
      } else if (m.type === "extended" && m.id === FAKE_UT_PEX_ID) {
        o.log.received.push(decodePex(m.payload));
      } else {
        o.log.other.push(m.type);
      }
    }
    await sending;
  };
}

/** A peer as lt_pex.py lists it (`PEERS` lines). */
export interface LtPeerRow {
  readonly ip: string;
  readonly port: number;
  /** libtorrent's `peer_info.source` bits (tracker 1, dht 2, pex 4, lsd 8, resume data 16, incoming 32). */
  readonly source: number;
  /** The source bit `lt.peer_info.pex` is set: libtorrent learnt this peer through ut_pex. */
  readonly pex: boolean;
  /** libtorrent dialled it. */
  readonly outgoing: boolean;
  readonly connecting: boolean;
  /** The BitTorrent handshake is not complete yet. */
  readonly in_handshake: boolean;
}

/** A running lt_pex.py peer. */
export interface LtPexPeer extends RealPeer {
  /** The peers it was connected to at its latest `PEERS` line. */
  peers(): LtPeerRow[];
  /** Waits (bounded) until its peer list satisfies `pred`; returns the row `pred` picked. */
  waitForPeer(pred: (r: LtPeerRow) => boolean, timeoutMs: number, what: string): Promise<LtPeerRow>;
  /** `ip:port` of every peer connection it logged (`PEER` lines). */
  connections(): string[];
}

/**
 * Starts a python3-libtorrent peer with ut_pex on (unless `noPex`): `seed` checks and seeds `dataDir/<name>`,
 * `leech` downloads into `dataDir`, `idle` sets every file to priority 0 (no piece, wants none, stays connected).
 * Resolves once it is ready (`READY <port>`).
 */
export async function startLtPex(opts: {
  torrent: string;
  dataDir: string;
  mode: "seed" | "leech" | "idle";
  connect?: string[];
  /** Upload limit in bytes/s, applied to loopback peers too; default unlimited. */
  uploadRate?: number;
  noPex?: boolean;
  timeoutMs?: number;
}): Promise<LtPexPeer> {
  const args = ["-u", LT_PEX_SCRIPT, "--torrent", opts.torrent, "--dir", opts.dataDir, "--mode", opts.mode];
  for (const c of opts.connect ?? []) args.push("--connect", c);
  if (opts.uploadRate) args.push("--upload-rate", String(opts.uploadRate));
  if (opts.noPex) args.push("--no-pex");
  const proc = new LineProcess(`libtorrent-pex-${opts.mode}`, SYSTEM_PYTHON, args);
  let port: number;
  try {
    port = Number((await proc.waitForLine(/^READY (\d+)$/, opts.timeoutMs ?? 30_000))[1]);
  } catch (e) {
    await proc.close();
    throw e;
  }
  const peers = (): LtPeerRow[] => {
    for (let i = proc.lines.length - 1; i >= 0; i--) {
      if (proc.lines[i].startsWith("PEERS ")) return JSON.parse(proc.lines[i].slice(6)) as LtPeerRow[];
    }
    return [];
  };
  return {
    port,
    proc,
    peers,
    async waitForPeer(pred, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      let from = 0;
      for (;;) {
        for (; from < proc.lines.length; from++) {
          const line = proc.lines[from];
          if (!line.startsWith("PEERS ")) continue;
          const hit = (JSON.parse(line.slice(6)) as LtPeerRow[]).find(pred);
          if (hit) return hit;
        }
        if (proc.exited) throw new Error(`${proc.name} exited while waiting for ${what}\n${proc.tail()}`);
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new Error(`${proc.name}: timed out after ${timeoutMs} ms waiting for ${what}\n${proc.tail()}`);
        }
        await sleep(Math.min(left, 100));
      }
    },
    connections() {
      return proc.lines.filter((l) => l.startsWith("PEER ")).map((l) => l.slice(5));
    },
    async close() {
      await proc.close();
    },
  };
}
