/**
 * The events a torrent session reports: the same objects `--json` prints, one per line. Every event has `event` and
 * `t` (ms since the session started). Field names are snake_case and stable; new fields may be added.
 * @module
 */
import type { WarningCode } from "../storage/storage_error.ts";

/** A file as events describe it; `index` is 1-based over non-padding files, as `info` prints and `--select` takes. */
export interface EventFile {
  readonly index: number;
  readonly path: string;
  readonly length: number;
  readonly selected: boolean;
}

/** Bytes moved with one peer in this run. */
export interface PeerShare {
  readonly address: string;
  readonly client: string;
  readonly downloaded: number;
  readonly uploaded: number;
}

/** Everything a session reports. */
export type SessionEvent =
  | {
    readonly event: "metadata";
    readonly name: string;
    readonly info_hash: string;
    readonly size: number;
    readonly piece_length: number;
    readonly pieces: number;
    readonly private: boolean;
    readonly files: readonly EventFile[];
  }
  | { readonly event: "checking"; readonly checked: number; readonly total: number }
  | {
    readonly event: "resume";
    readonly source: "resume" | "hash";
    readonly verified: number;
    readonly pieces: number;
    readonly missing: number;
  }
  | { readonly event: "listening"; readonly port: number }
  | {
    readonly event: "tracker";
    readonly url: string;
    readonly peers?: number;
    readonly error?: string;
    readonly warning?: string;
  }
  | {
    readonly event: "peer";
    readonly action: "connected" | "disconnected" | "banned";
    readonly address: string;
    readonly incoming: boolean;
    /** Where we learnt of the peer. */
    readonly source: "tracker" | "manual" | "incoming" | "dht" | "pex" | "webseed";
    readonly client?: string;
    readonly reason?: string;
    readonly downloaded?: number;
    readonly uploaded?: number;
  }
  | {
    readonly event: "progress";
    readonly verified: number;
    readonly total: number;
    readonly downloaded: number;
    readonly uploaded: number;
    readonly download_rate: number;
    readonly upload_rate: number;
    readonly peers: number;
    readonly eta_s: number | null;
    /** Web seeds in use (BEP 19), besides the peers. */
    readonly web_seeds: number;
  }
  /** A DHT lookup ended: the routing table's size, what the lookup found, whether it announced us. */
  | {
    readonly event: "dht";
    readonly nodes: number;
    readonly good: number;
    readonly peers: number;
    readonly queries: number;
    readonly answered: number;
    readonly announced: boolean;
  }
  /**
   * Something the user should know that did not stop the session (e.g. incoming peers cannot be accepted). `code`
   * names the warnings a program may act on ({@linkcode WarningCode}): `no-resume-record` when the session ended without
   * saving its resume record (the disk did not finish writing in time, or the record could not be written), so the next
   * run checks the data on disk instead. A warning is said once per message: a checkpoint that met the same failure
   * earlier said it already, without the code.
   */
  | { readonly event: "warning"; readonly message: string; readonly code?: WarningCode }
  | {
    /** A bug of ours that ended one connection (not the session); `stack` for `--debug`. */
    readonly event: "internal-error";
    readonly where: string;
    readonly peer?: string;
    readonly message: string;
    readonly stack?: string;
  }
  | { readonly event: "piece-failed"; readonly piece: number; readonly peers: readonly string[] }
  | { readonly event: "file-complete"; readonly index: number; readonly path: string }
  | { readonly event: "complete"; readonly verified: number; readonly elapsed_ms: number }
  /** Seeding began: until a ratio or a time (whichever comes first), or, when `until` is null, until stopped. */
  | {
    readonly event: "seeding";
    readonly until: { readonly ratio: number | null; readonly time_s: number | null } | null;
  }
  | {
    readonly event: "done";
    readonly complete: boolean;
    readonly downloaded: number;
    readonly uploaded: number;
    readonly wasted: number;
    readonly verified: number;
    readonly elapsed_ms: number;
    /** Where the files are: `DIR/<name>`. */
    readonly path: string;
    readonly peers: readonly PeerShare[];
    /** Peer addresses learnt from each source in this run (`tracker`, `dht`, `pex`, `manual`, `incoming`, `webseed`). */
    readonly sources: Readonly<Record<string, number>>;
  };

/** An event with its time stamp, as delivered to listeners. */
export type TimedEvent = SessionEvent & { readonly t: number };
