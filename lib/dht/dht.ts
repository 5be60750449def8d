/**
 * The DHT runtime: one UDP socket per address family (IPv4 on `0.0.0.0`, IPv6 on `::`, both on the TCP listener's
 * port number), one timer, the bootstrap, and the state file. Everything else — answers, routing, lookups, tokens —
 * is the pure node in `node.ts`; this module hands it datagrams and the clock and sends what it asks.
 *
 * A process has one `Dht`, shared by the metadata fetch of a magnet and the session that follows.
 * @module
 */
import dgram from "node:dgram";
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
  readonly #sockets = new Map<4 | 6, dgram.Socket>();
  readonly #t0 = performance.now();
  readonly #timer: ReturnType<typeof setInterval>;
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
    this.#timer = setInterval(() => {
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
    const sockets = new Map<4 | 6, dgram.Socket>();
    const v4 = o.bind?.v4 === undefined ? "0.0.0.0" : o.bind.v4;
    const v6 = o.bind?.v6 === undefined ? "::" : o.bind.v6;
    let port = o.port;
    if (v4 !== null) {
      const s = await bind("udp4", v4, port);
      sockets.set(4, s);
      port = s.address().port;
    }
    if (v6 !== null) {
      try {
        sockets.set(6, await bind("udp6", v6, port));
      } catch { /* no IPv6 here: the IPv4 half works alone */ }
    }
    if (sockets.size === 0) throw new Error("Cannot start the DHT: no address family to bind");
    const node = createDhtNode({ id, families: [...sockets.keys()], now: 0, random });
    const d = new Dht({ ...o, random }, node, state?.nodes.slice() ?? []);
    for (const [family, s] of sockets) {
      d.#sockets.set(family, s);
      s.on("message", (msg: Uint8Array, r: { address: string; port: number }) => {
        if (d.#closed) return;
        const from = { host: r.address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1"), port: r.port };
        receive(d.#node, from, msg, d.#now(), d.#io);
      });
      s.on("error", () => {}); // a send to an unreachable address: the query times out like any other
    }
    await d.#resolveRouters(o.bootstrap ?? DEFAULT_BOOTSTRAP);
    d.#bootstrap();
    return d;
  }

  /** The UDP port bound. */
  get port(): number {
    const s = this.#sockets.get(4) ?? this.#sockets.get(6);
    return s ? s.address().port : 0;
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
    try {
      s.send(bytes, to.port, to.host);
    } catch { /* an unsendable address: the query times out */ }
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
    clearInterval(this.#timer);
    if (this.#o.statePath) {
      const nodes = nodesToSave(this.#node, this.#now());
      const err = saveDhtState(this.#o.statePath, { id: this.#node.id, nodes: nodes.length > 0 ? nodes : this.#saved });
      if (err) this.#o.onNote?.(`Cannot save the DHT state to ${this.#o.statePath}: ${err}`);
    }
    for (const w of this.#waiters.values()) w.done({ closest: [], peers: [], queries: 0, answered: 0, failed: 0 });
    this.#waiters.clear();
    return Promise.all([...this.#sockets.values()].map((s) => new Promise<void>((r) => s.close(() => r()))))
      .then(() => {});
  }
}

function bind(type: "udp4" | "udp6", host: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(type === "udp6" ? { type, ipv6Only: true } : { type });
    s.once("error", (e) => {
      try {
        s.close();
      } catch { /* not open */ }
      reject(e);
    });
    s.bind(port, host, () => {
      s.removeAllListeners("error");
      resolve(s);
    });
  });
}
