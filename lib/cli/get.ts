/**
 * `btfetch get`: fetch a torrent's files into `-o DIR`, and seed afterwards when asked; `btfetch seed` is the same
 * over data that is already there. Seeding ended by SIGINT or SIGTERM is the normal end of seeding (exit 0); a fetch
 * interrupted before it completed is not (`Interrupted`, exit 130). A download that completes and does not go on
 * seeding removes its state folder (`DIR/.btfetch/<info-hash>/`), as aria2c removes its control file.
 * @module
 */
import { DEFAULT_BOOTSTRAP, Dht } from "../dht/dht.ts";
import { defaultDhtStatePath } from "../dht/state_file.ts";
import { type Listener, openListener } from "../engine/listener.ts";
import { fetchMetadata, type MetadataPeer } from "../engine/metadata_fetch.ts";
import { CLIENT_NAME, makePeerId, runSession, type SessionResult } from "../engine/session.ts";
import { dirname, join } from "../path.ts";
import { type Metainfo, parseInfoDict } from "../metainfo.ts";
import { checkOutputDir, StorageError } from "../storage/disk.ts";
import { discardWriterThread, prestartWriterThread } from "../storage/piece_writer.ts";
import { torrentFromInfo } from "../wire/metadata.ts";
import type { CliOptions } from "./flags.ts";
import { Interrupted, type InterruptedState, onInterrupt } from "./interrupt.ts";
import type { Reporter } from "./report.ts";
import { selectFiles } from "./select.ts";
import { osWords, plainOsText } from "./os_words.ts";
import { loadTorrent, openSource } from "./source.ts";
import { FileStream, ReaderGone } from "./stream.ts";
import { UsageError } from "./usage_error.ts";
import type { PeerAddress } from "../address.ts";

/**
 * Runs `get` (also `seed`, which is `get` over data that is already there). Resolves when done, also when a signal
 * ends seeding. `get` first checks that the output folder can be written, before any network work, so an unwritable
 * `-o` fails at once.
 * @throws whatever ended the session: `FetchError`, `StorageError` (at once for an unwritable `-o`), `Interrupted`
 * (before the download completed), …
 */
export async function runGet(o: CliOptions, report: Reporter, seedOnly = false): Promise<SessionResult> {
  const interrupt = onInterrupt();
  const peerId = makePeerId();
  let listener: Listener | null = null;
  let dht: Dht | null = null;
  /** The connection that fetched a magnet's metadata, for the download to go on with. */
  let metadataPeer: MetadataPeer | undefined;
  try {
    // before any network work (a URL, the metadata of a magnet, peers): an output that can never be written fails now
    if (!seedOnly) checkOutputDir(o.out);
    prestartWriterThread(); // it loads while the torrent is read or a magnet's metadata fetched
    const source = seedOnly
      ? { kind: "torrent" as const, ...(await loadTorrent(o.source ?? "")) }
      : await openSource(o.source ?? "");
    // one TCP port for peers, and the DHT's UDP sockets on the same number (never for a private torrent: BEP 27)
    listener = openListener(o.port, { onError: (e) => report.say(`Warning: ${e.message}`), hostname: o.bind });
    const isPrivate = source.kind === "torrent" && source.meta.private;
    if (o.dht && !isPrivate) dht = await openDht(o, listener.port, report);
    let meta: Metainfo;
    let peers = o.peers;
    // peers found while fetching a magnet's metadata: the download starts from them instead of looking again
    const discovered: { address: PeerAddress; source: "dht" | "tracker" }[] = [];
    let selected: Set<number> | undefined;
    if (source.kind === "torrent") {
      meta = source.meta;
      selected = selectFiles(meta, o.select);
    } else {
      const mg = source.magnet;
      const tiers = mg.trackers.map((t) => [t]);
      peers = [...mg.peers, ...o.peers];
      report.say(`Fetching the metadata of ${mg.infoHashHex} from peers${dht ? " (DHT on)" : ""}`);
      const info = await fetchMetadata({
        infoHash: mg.infoHash,
        peers,
        tiers: [...tiers, ...o.trackers.map((t) => [t])],
        peerId,
        port: listener.port,
        timeoutMs: o.metadataTimeoutMs ?? o.timeoutMs ?? DEFAULT_METADATA_TIMEOUT_MS,
        signal: interrupt.signal,
        onNote: (t) => report.say(t),
        clientName: CLIENT_NAME,
        dht: dht ?? undefined,
        onPeers: (found, source) => {
          for (const address of found) if (discovered.length < MAX_DISCOVERED) discovered.push({ address, source });
        },
        onHandOver: (p) => metadataPeer = p,
      });
      meta = parseInfoDict(info, { announce: tiers, urlList: mg.webSeeds });
      if (o.saveTorrent) await saveTorrent(o.saveTorrent, torrentFromInfo(info, tiers, mg.webSeeds));
      selected = o.select ? selectFiles(meta, o.select) : magnetSelection(meta, mg.select);
    }
    const seeding = seedOnly || o.seed || o.seedRatio !== undefined || o.seedTimeMs !== undefined;
    const stream = o.stdout ? streamTo(meta, o.out, selected) : null;
    // a --stdout reader that went away ends the download, quietly; a stream that failed ends it with its error
    const stop = new AbortController();
    stream?.done.then((end) => end === "closed" && stop.abort(new StdoutClosed()), (e) => stop.abort(e));
    let result: SessionResult;
    let kept: InterruptedState = "saved"; // what a signal leaves behind, as the session tells by events and onRecordLost
    try {
      result = await runSession({
        meta,
        outDir: o.out,
        selected,
        peerId,
        peers,
        // BEP 27: a torrent that turned out private takes no peer the DHT gave (its trackers and --peer only)
        discovered: meta.private ? discovered.filter((d) => d.source !== "dht") : discovered,
        adopt: metadataPeer,
        trackers: o.trackers,
        maxPeers: o.maxPeers,
        listener,
        dht: dht && !meta.private ? dht : undefined,
        pex: o.pex,
        webSeeds: o.webSeeds,
        timeoutMs: o.timeoutMs,
        stallTimeoutMs: o.stallTimeoutMs,
        check: o.check,
        sequential: o.sequential || stream !== null, // a stream wants the pieces ahead of its reader first
        onVerified: stream ? (have) => stream.update(have) : undefined,
        seed: seeding ? { ratio: o.seedRatio, timeMs: o.seedTimeMs } : undefined,
        maxDownloadRate: o.maxDownloadRate,
        maxUploadRate: o.maxUploadRate,
        requireComplete: seedOnly,
        dropRecordWhenComplete: !seedOnly && !seeding, // removeState below
        signal: AbortSignal.any([interrupt.signal, stop.signal]),
        onRecordLost: () => kept = "no-record",
        onEvent: (e) => {
          if (e.event === "checking") kept = "checking";
          if (e.event === "resume") kept = "saved";
          report.event(e);
        },
      });
      // the download is done; the reader may not be: a signal still ends the run (130), a failed write is an error
      if (stream && (await untilAborted(stream.done, interrupt.signal)) === "closed" && !result.complete) return result;
    } catch (e) {
      if (e instanceof StdoutClosed) return resultOf(report); // `| head -c 100`: the reader has what it wanted
      // a signal while seeding ends seeding, which has no other end: that is success, not an interrupted fetch, unless
      // the reader has not had the whole file yet
      if (!(e instanceof Interrupted) || !report.seeding || (stream !== null && !stream.written)) {
        throw e instanceof Interrupted && kept !== "saved" ? new Interrupted(e.signal, kept) : e;
      }
      report.stoppedSeeding();
      return resultOf(report);
    }
    if (!seedOnly && !seeding && result.complete) await removeState(o.out, meta.infoHashHex, report);
    report.summary();
    return result;
  } finally {
    discardWriterThread(); // when no session took it
    metadataPeer?.pc.close(); // when no session took it (a session closes its peers when it ends)
    await dht?.close(); // saves the node id and good nodes for a warm start next time
    await listener?.close();
    interrupt.dispose();
    report.close();
  }
}

/** Peers found while fetching metadata that are handed to the download, at most. */
const MAX_DISCOVERED = 1000;

/** The reason a download stops when the `--stdout` reader has gone away. */
class StdoutClosed extends Error {
  override readonly name = "StdoutClosed";
  constructor() {
    super("standard output was closed");
  }
}

/**
 * The `--stdout` stream of the one selected file (`--select N`, or the torrent's only file).
 * @throws {UsageError} when more or fewer than one file is selected.
 */
function streamTo(meta: Metainfo, out: string, selected: ReadonlySet<number> | undefined): FileStream {
  const files = meta.files.filter((f) => !f.padding && (!selected || selected.has(f.index)));
  if (files.length !== 1) {
    throw new UsageError(
      `--stdout streams one file, and ${files.length} are selected: pick one with --select N (numbers as info shows)`,
    );
  }
  return new FileStream(meta, out, files[0].index, async (bytes) => {
    let off = 0;
    while (off < bytes.length) {
      try {
        off += await Deno.stdout.write(bytes.subarray(off));
      } catch (e) {
        if (e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.ConnectionReset) {
          throw new ReaderGone({ cause: e });
        }
        // a pipe that another process sharing it made non-blocking: Deno's write then loses count of what it wrote
        // (tried: retrying sends bytes twice), so the output cannot be trusted and the run ends with an error
        if (e instanceof Deno.errors.WouldBlock) {
          throw new StorageError("write", "standard output", "it is a non-blocking pipe, which btfetch cannot write");
        }
        throw StorageError.fromOs("write", "standard output", e); // a full disk behind `> file`, ...
      }
    }
  });
}

/** `p`, unless `signal` aborts first: then its reason. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** How long a magnet's metadata may take when neither --metadata-timeout nor --timeout says. */
export const DEFAULT_METADATA_TIMEOUT_MS = 5 * 60_000;

/**
 * Starts the DHT on `port` (UDP), from `--dht-bootstrap` or the well-known routers, with its state in `--dht-state`
 * or the user's cache folder. A DHT that cannot start is a warning: trackers and peers still work.
 */
async function openDht(o: CliOptions, port: number, report: Reporter): Promise<Dht | null> {
  const statePath = o.dhtState ?? defaultDhtStatePath((k) => Deno.env.get(k), Deno.build.os);
  const opts = {
    bootstrap: o.dhtBootstrap.length > 0 ? o.dhtBootstrap : DEFAULT_BOOTSTRAP,
    statePath,
    onNote: (t: string) => report.say(t),
  };
  const bind = o.bind === undefined
    ? undefined
    : o.bind.includes(":")
    ? { v4: null, v6: o.bind }
    : { v4: o.bind, v6: null };
  try {
    return await Dht.open({ ...opts, port, bind });
  } catch {
    try {
      return await Dht.open({ ...opts, port: 0, bind }); // the UDP port is taken: any port will do
    } catch (e) {
      report.say(`Warning: the DHT cannot start (${e instanceof Error ? e.message : String(e)}); going on without it`);
      return null;
    }
  }
}

/** BEP 53 `so=` (0-based indexes into the info dictionary's file list) as a selection; padding files left out. */
function magnetSelection(meta: Metainfo, so: readonly number[] | undefined): Set<number> | undefined {
  if (!so) return undefined;
  const picked = so.filter((i) => i < meta.files.length && !meta.files[i].padding);
  return picked.length > 0 ? new Set(picked) : undefined;
}

/** The result of a session that a signal ended while seeding, from its `done` event. */
function resultOf(report: Reporter): SessionResult {
  const d = report.done;
  return {
    complete: d?.complete ?? true,
    downloaded: d?.downloaded ?? 0,
    uploaded: d?.uploaded ?? 0,
    wasted: d?.wasted ?? 0,
    verified: d?.verified ?? 0,
    elapsedMs: d?.elapsed_ms ?? 0,
    peers: d?.peers ?? [],
  };
}

/**
 * Removes `outDir/.btfetch/<info-hash>/` after a completed download (and `.btfetch` itself when that leaves it
 * empty): nothing needs the resume record any more. A `.btfetch` that is a symbolic link, or anything but a folder,
 * is left alone; a failure is a warning, never a failed run.
 */
async function removeState(outDir: string, infoHashHex: string, report: Reporter): Promise<void> {
  const top = join(outDir, ".btfetch");
  const mine = join(top, infoHashHex);
  try {
    const a = await Deno.lstat(top);
    const b = await Deno.lstat(mine);
    if (!a.isDirectory || !b.isDirectory) return;
    await Deno.remove(mine, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      report.say(`Warning: cannot remove ${mine}: ${osWords(e) ?? plainOsText(String(e))}`);
    }
    return;
  }
  await Deno.remove(top).catch(() => {}); // only when empty: other torrents' records stay
}

async function saveTorrent(path: string, bytes: Uint8Array): Promise<void> {
  try {
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeFile(path, bytes);
  } catch (e) {
    throw StorageError.fromOs("write", path, e);
  }
}
