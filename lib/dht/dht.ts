/**
 * The DHT runtime: the UDP sockets (on the TCP listener's port number), one timer, the bootstrap, and the state file.
 * Everything else — answers, routing, lookups, tokens — is the pure node in `node.ts`; this module hands it datagrams
 * and the clock and sends what it asks.
 *
 * Sockets are Deno's own (`Deno.listenDatagram`, no `node:dgram`, whose polyfills cost start-up). By default one
 * socket on `::` carries both families where the system makes such a socket dual-stack (Linux's default): IPv4
 * peers are then reached at their IPv4-mapped address. Where it is IPv6-only, or IPv6 is missing, IPv4 gets its own
 * socket on `0.0.0.0`; addresses given with `bind` get one socket each.
 *
 * A process has one `Dht`, shared by the metadata fetch of a magnet and the session that follows.
 * @module
 */
import { formatAddress, parseAddress, type PeerAddress } from "../address.ts";
import type { LookupResult } from "./lookup.ts";
import {
  createDhtNode,
  type DhtIO,
  type DhtNode,
  type DhtStats,
  dhtStats,
  familyOf,
  nodesToSave,
  receive,
  startLookup,
  tick,
} from "./node.ts";
import { ID_BYTES, type NodeInfo, randomBytes } from "./node_id.ts";
import { loadDhtState, saveDhtState } from "./state_file.ts";
import { isIpLiteral, resolveAll } from "../resolve.ts";
import { clearTimer, setRepeat, sleep, type TimerHandle } from "../timers.ts";

/** The routers a node bootstraps from when none are named (never used by btfetch's tests). */
export const DEFAULT_BOOTSTRAP: readonly string[] = [
  "router.bittorrent.com:6881",
  "dht.transmissionbt.com:6881",
  "router.utorrent.com:6881",
  "dht.libtorrent.org:25401",
];
/** How often the node's clock ticks. */
const TICK_MS = 250;
/** A new bootstrap at most this often, while the routing table is empty. */
const REBOOTSTRAP_MS = 30_000;

/** Options for {@linkcode Dht.open}. */
export interface DhtOptions {
  /** The UDP port (the TCP listener's); 0 picks any. */
  readonly port: number;
  /** `HOST:PORT` of bootstrap nodes; {@linkcode DEFAULT_BOOTSTRAP} when absent. */
  readonly bootstrap?: readonly string[];
  /** Where the node id and good nodes are kept between runs; null keeps nothing. */
  readonly statePath: string | null;
  /** Addresses to bind (default `0.0.0.0` and `::`); tests bind loopback. */
  readonly bind?: { readonly v4?: string | null; readonly v6?: string | null };
  /** Values in [0, 1) (default: the system's cryptographic random source). */
  readonly random?: () => number;
  /** Something worth a line (a bootstrap host that did not resolve, a state file that could not be saved). */
  readonly onNote?: (text: string) => void;
}

/** What one {@linkcode Dht.findPeers} call found. */
export interface FindPeersResult {
  /** Distinct peers found. */
  readonly peers: number;
  /** Nodes queried. */
  readonly queries: number;
  /** Nodes that answered. */
  readonly answered: number;
}

interface Waiter {
  onPeers: (peers: readonly PeerAddress[]) => void;
  done: (r: LookupResult) => void;
}

/** A running DHT node. Call {@linkcode Dht.close} to save its state and close its sockets. */
export class Dht {
  readonly #node: DhtNode;
  /** The socket of each family (one socket may serve both: see {@linkcode Socket.mapped}). */
  readonly #sockets = new Map<4 | 6, Socket>();
  readonly #t0 = performance.now();
  readonly #timer: TimerHandle;
  readonly #waiters = new Map<number, Waiter>();
  readonly #routers: PeerAddress[] = [];
  readonly #saved: NodeInfo[];
  readonly #o: DhtOptions;
  #lastBootstrap = -Infinity;
  #closed = false;
  readonly #io: DhtIO;

  private constructor(o: DhtOptions, node: DhtNode, saved: NodeInfo[]) {
    this.#o = o;
    this.#node = node;
    this.#saved = saved;
    this.#io = {
      send: (to, bytes) => this.#send(to, bytes),
      lookupPeers: (id, peers) => this.#waiters.get(id)?.onPeers(peers),
      lookupDone: (id, result) => {
        const w = this.#waiters.get(id);
        this.#waiters.delete(id);
        w?.done(result);
      },
    };
    this.#timer = setRepeat(() => {
      if (!this.#closed) tick(this.#node, this.#now(), this.#io);
    }, TICK_MS);
  }

  /**
   * Binds the sockets (IPv4, and IPv6 where the system has it), loads the saved state, and starts the bootstrap.
   * @throws {Deno.errors.AddrInUse} (or another OS error) when the IPv4 socket cannot be bound.
   */
  static async open(o: DhtOptions): Promise<Dht> {
    // the node id and the token secrets must not be predictable: Math.random's output can be (tests inject their own)
    const random = o.random ?? (() => crypto.getRandomValues(new Uint32Array(1))[0] / 0x1_0000_0000);
    const state = o.statePath ? loadDhtState(o.statePath) : null;
    const id = state?.id ?? randomBytes(random, ID_BYTES);
    const v4 = o.bind?.v4 === undefined ? "0.0.0.0" : o.bind.v4;
    const v6 = o.bind?.v6 === undefined ? "::" : o.bind.v6;
    const sockets = bindSockets(v4, v6, o.port);
    const node = createDhtNode({ id, families: [...sockets.keys()], now: 0, random });
    const d = new Dht({ ...o, random }, node, state?.nodes.slice() ?? []);
    for (const [family, s] of sockets) d.#sockets.set(family, s);
    for (const conn of new Set([...sockets.values()].map((s) => s.conn))) d.#receiveFrom(conn);
    await d.#resolveRouters(o.bootstrap ?? DEFAULT_BOOTSTRAP);
    d.#bootstrap();
    return d;
  }

  /** The UDP port bound. */
  get port(): number {
    const s = this.#sockets.get(4) ?? this.#sockets.get(6);
    return s ? (s.conn.addr as Deno.NetAddr).port : 0;
  }

  /** Our node id. */
  get id(): Uint8Array {
    return this.#node.id;
  }

  #now(): number {
    return performance.now() - this.#t0;
  }

  #send(to: PeerAddress, bytes: Uint8Array): void {
    const s = this.#sockets.get(familyOf(to));
    if (!s || this.#closed) return;
    const hostname = s.mapped ? `::ffff:${to.host}` : to.host;
    try {
      s.conn.send(bytes, { transport: "udp", hostname, port: to.port }).catch(() => {
        // an unreachable or unsendable address: the query times out like any other
      });
    } catch { /* the same, thrown at once */ }
  }

  /** Hands every datagram `conn` receives to the node, until the node closes. */
  async #receiveFrom(conn: Deno.DatagramConn): Promise<void> {
    const buf = new Uint8Array(MAX_DATAGRAM_BYTES); // one buffer: each datagram is copied out of it
    let errorsInARow = 0;
    while (!this.#closed) {
      let got: [Uint8Array, Deno.Addr];
      try {
        got = await conn.receive(buf);
      } catch {
        if (this.#closed) return;
        // an ICMP error for an earlier send surfaces here; a socket that only fails is not spun on
        if (++errorsInARow >= 100) {
          errorsInARow = 0;
          await sleep(100);
        }
        continue;
      }
      errorsInARow = 0;
      if (this.#closed) return;
      const r = got[1] as Deno.NetAddr;
      const from = { host: r.hostname.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, "$1"), port: r.port };
      receive(this.#node, from, got[0].slice(), this.#now(), this.#io);
    }
  }

  async #resolveRouters(names: readonly string[]): Promise<void> {
    for (const name of names) {
      let a: PeerAddress;
      try {
        a = parseAddress(name);
      } catch {
        this.#o.onNote?.(`DHT bootstrap node ${JSON.stringify(name)} is not HOST:PORT`);
        continue;
      }
      const hosts = isIpLiteral(a.host) ? [a.host] : await resolveAll(a.host);
      if (hosts.length === 0) this.#o.onNote?.(`DHT bootstrap node ${name} did not resolve`);
      for (const host of hosts) {
        this.#routers.push({ host, port: a.port }); // its id is unknown: startLookup gives it a stand-in
      }
    }
  }

  #bootstrap(): void {
    const now = this.#now();
    this.#lastBootstrap = now;
    for (const family of this.#sockets.keys()) {
      startLookup(
        this.#node,
        {
          kind: "find_node",
          target: this.#node.id,
          family,
          seeds: this.#saved,
          routers: this.#routers,
          internal: true,
        },
        now,
        this.#io,
      );
    }
  }

  /**
   * Looks up peers of `infoHash` in every family, reporting them to `onPeers` as they come; with `announcePort`,
   * announces that TCP port to the closest nodes at the end. Resolves when the lookups end.
   */
  findPeers(
    infoHash: Uint8Array,
    o: { readonly announcePort?: number | null; readonly onPeers: (peers: readonly PeerAddress[]) => void },
  ): Promise<FindPeersResult> {
    if (this.#closed) return Promise.resolve({ peers: 0, queries: 0, answered: 0 });
    const now = this.#now();
    const s = dhtStats(this.#node, now);
    if (s.good === 0 && now - this.#lastBootstrap >= REBOOTSTRAP_MS) this.#bootstrap();
    const runs: Promise<LookupResult>[] = [];
    for (const family of this.#sockets.keys()) {
      runs.push(
        new Promise<LookupResult>((resolve) => {
          const id = startLookup(
            this.#node,
            {
              kind: "get_peers",
              target: infoHash,
              family,
              seeds: this.#saved,
              routers: this.#routers,
              announcePort: o.announcePort ?? null,
            },
            this.#now(),
            {
              ...this.#io,
              // the first actions (and an instant `done`) happen inside startLookup, before the waiter exists
              lookupPeers: (_, peers) => o.onPeers(peers),
              lookupDone: (_, r) => resolve(r),
            },
          );
          if (id === null) resolve({ closest: [], peers: [], queries: 0, answered: 0, failed: 0 });
          else if (this.#node.lookups.has(id)) this.#waiters.set(id, { onPeers: o.onPeers, done: resolve });
        }),
      );
    }
    return Promise.all(runs).then((rs) => ({
      peers: new Set(rs.flatMap((r) => r.peers.map(formatAddress))).size,
      queries: rs.reduce((n, r) => n + r.queries, 0),
      answered: rs.reduce((n, r) => n + r.answered, 0),
    }));
  }

  /** The node's counts now. */
  stats(): DhtStats {
    return dhtStats(this.#node, this.#now());
  }

  /** Saves the state (when a path was given), closes the sockets and the timer; lookups under way end empty. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearTimer(this.#timer);
    if (this.#o.statePath) {
      const nodes = nodesToSave(this.#node, this.#now());
      const err = saveDhtState(this.#o.statePath, { id: this.#node.id, nodes: nodes.length > 0 ? nodes : this.#saved });
      if (err) this.#o.onNote?.(`Cannot save the DHT state to ${this.#o.statePath}: ${err}`);
    }
    for (const w of this.#waiters.values()) w.done({ closest: [], peers: [], queries: 0, answered: 0, failed: 0 });
    this.#waiters.clear();
    for (const conn of new Set([...this.#sockets.values()].map((s) => s.conn))) {
      try {
        conn.close();
      } catch { /* closed already */ }
    }
    return Promise.resolve();
  }
}

/** One UDP socket, and whether it reaches IPv4 peers at their IPv4-mapped IPv6 address (a dual-stack `::`). */
interface Socket {
  readonly conn: Deno.DatagramConn;
  readonly mapped: boolean;
}

/** The largest UDP payload: a datagram is read whole into a buffer of this size. */
const MAX_DATAGRAM_BYTES = 65_536;

function listen(hostname: string, port: number): Deno.DatagramConn {
  return Deno.listenDatagram({ hostname, port, transport: "udp" });
}

/**
 * The sockets for `v4` and `v6` (null: that family is off) on `port` (0: any, the same for both). Both wildcards:
 * `::` first; when `0.0.0.0` then cannot take the same port, `::` is dual-stack and serves IPv4 too.
 * @throws {Deno.errors.AddrInUse} (or another OS error) when no socket can serve IPv4 (or, without IPv4, IPv6).
 */
function bindSockets(v4: string | null, v6: string | null, port: number): Map<4 | 6, Socket> {
  const sockets = new Map<4 | 6, Socket>();
  if (v4 === "0.0.0.0" && v6 === "::") {
    let dual: Deno.DatagramConn | null = null;
    try {
      dual = listen("::", port);
    } catch { /* no IPv6 here: IPv4 alone */ }
    if (dual !== null) {
      const at = (dual.addr as Deno.NetAddr).port;
      sockets.set(6, { conn: dual, mapped: false });
      try {
        sockets.set(4, { conn: listen("0.0.0.0", at), mapped: false }); // an IPv6-only system: a socket each
      } catch (e) {
        if (!(e instanceof Deno.errors.AddrInUse)) {
          dual.close();
          throw e;
        }
        sockets.set(4, { conn: dual, mapped: true }); // `::` holds the IPv4 port too: it is dual-stack
      }
      return sockets;
    }
  }
  if (v4 !== null) {
    const conn = listen(v4, port);
    sockets.set(4, { conn, mapped: false });
    port = (conn.addr as Deno.NetAddr).port;
  }
  if (v6 !== null) {
    try {
      sockets.set(6, { conn: listen(v6, port), mapped: false });
    } catch (e) {
      if (v4 === null) throw e;
      // no IPv6 here (or its port is taken): the IPv4 half works alone
    }
  }
  if (sockets.size === 0) throw new Error("Cannot start the DHT: no address family to bind");
  return sockets;
}
