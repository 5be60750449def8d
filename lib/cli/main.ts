/**
 * The command-line entry: parse, run the command, map what ended it to an exit code (one table, below).
 *
 * Start-up: this module and what it imports statically load neither `node:fs` nor `node:crypto` (their polyfills
 * cost more than the rest of `btfetch info`); each command's module is imported when that command runs, so
 * `--version`, `--help`, `info` and `magnet` never load the engine, the storage or the DHT. `tests/cli/startup_test.ts`
 * keeps it so.
 * @module
 */
import { AddressError } from "../address.ts";
import { BencodeError } from "../bencode.ts";
import type { CreateError } from "../create.ts";
import { FetchError } from "../engine/errors.ts";
import { MagnetError, magnetFromMetainfo, magnetLeftOutNote } from "../magnet.ts";
import { MetainfoError } from "../metainfo.ts";
import { join } from "../path.ts";
import { StorageError } from "../storage/storage_error.ts";
import { errorText } from "./error_text.ts";
import { type CliOptions, parseCli, type Shell } from "./flags.ts";
import { Interrupted } from "./interrupt.ts";
import { processSinks, Reporter, type ReporterOptions, type ReportSinks } from "./report.ts";
import { loadTorrent, SourceError } from "./source.ts";
import { UsageError } from "./usage_error.ts";

/** The version `--version` prints. */
export const VERSION = "0.1.0";

/** Exit codes, as documented in `--help` and the README. */
export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  badInput: 3,
  network: 4,
  disk: 5,
  verification: 6,
  interrupted: 130,
} as const;

/** The help text. */
export const HELP = `btfetch ${VERSION}: fetch and seed BitTorrent content

Usage:
  btfetch <torrent> [-o DIR] [options]    fetch into DIR/<name> (same as: btfetch get <torrent>)
  btfetch info <torrent> [--json]         show name, info-hash, size, pieces, files, trackers, web seeds, magnet
  btfetch seed <torrent> [-d DIR]         verify the data at DIR/<name>, then seed it until stopped
  btfetch verify <torrent> [-d DIR]       check the data at DIR/<name> against the piece hashes
  btfetch create <path> -o FILE           write a .torrent for a file or folder
  btfetch magnet <torrent>                print the magnet link
  btfetch demo                            a loopback swarm: seed and fetch a generated payload
  btfetch completion bash|zsh|fish        print a shell completion script

<torrent> is a path or an http(s) URL of a .torrent file, or - to read it from standard input; get also takes a
magnet: link or a bare info-hash (40 hex or 32 base32 characters), whose metadata it fetches from peers (the DHT, the
magnet's trackers and x.pe, --tracker, --peer). get, seed and verify name the data folder the same way: -o DIR or
-d DIR, the current folder by default.

Fetch options:
  -o, --out DIR             where files land (DIR/<name>); also -d, --dir DIR; default: current folder
      --select 1,3-5        fetch only these files (numbers as 'info' prints them)
      --peer HOST:PORT      connect to this peer too (repeatable)
  -t, --tracker URL         announce to this tracker too (repeatable)
      --max-peers N         connected peers at most (default 50)
  -p, --port N              listen for peers on N (default: 6881-6889, else any free port)
      --timeout 30m         give up after this long (exit 4)
      --stall-timeout 2m    give up when nothing verifies for this long (default 5m; exit 4)
      --check               hash the data on disk even if the resume record is fresh
      --sequential          fetch pieces in order instead of rarest first
  -w, --web-seed URL        fetch from this web seed (BEP 19) too (repeatable)
      --save-torrent FILE   with a magnet: write the .torrent made from the fetched metadata (its folder is made)
      --metadata-timeout 5m with a magnet: give up on the metadata after this long (exit 4)
      --seed                keep seeding after the download completes, until stopped (Ctrl-C or SIGTERM: exit 0)
      --seed-ratio R        ... until uploaded/size reaches R
      --seed-time 10m       ... for this long
      --max-download-rate 10M, --max-upload-rate 1M   bytes per second (K, M, G suffixes)
Peer discovery (get and seed):
      --no-dht              do not use the DHT (it is never used for private torrents)
      --dht-bootstrap H:P   bootstrap the DHT from this node (repeatable; default: the well-known routers)
      --dht-state FILE      keep the DHT's node id and nodes here (default: the user's cache folder)
      --no-pex              do not exchange peers with peers (BEP 11)
Seed options: -d/-o DIR, --peer, --tracker, --max-peers, --port, --seed-ratio, --seed-time, --max-upload-rate
Verify options: -d/-o DIR
Create options: -o FILE, -t URL (repeatable; commas make one tier), -w/--web-seed URL, --piece-size 256K|auto,
                --private, --comment TEXT
Demo options: --size 64M, --leechers 3, -o DIR (keep the files there)
Output:
      --json                one JSON event per line on stdout
  -q, --quiet               no progress on stderr
      --debug               stack traces for internal errors
  -h, --help, -V, --version

Exit codes:
  0    every selected file complete and verified (or the command did what it says); seeding stopped by a signal
  1    internal error (a bug; --debug shows the stack trace)
  2    usage error: unknown command or flag, bad value
  3    bad input: unreadable or invalid torrent or magnet, or an unsafe file path inside it
  4    network: timed out, stalled, no peers (or no metadata for a magnet), --port in use
  5    disk: cannot create, write or read the output
  6    verification: data on disk does not match (verify), or peers sent only bad data
  130  interrupted before the download completed: state saved, run the same command again to resume
`;

/** Maps what ended a command to its exit code. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof UsageError || e instanceof AddressError) return EXIT.usage;
  if (e instanceof MetainfoError || e instanceof BencodeError || e instanceof MagnetError) return EXIT.badInput;
  if (e instanceof SourceError) return e.code === "network" ? EXIT.network : EXIT.badInput;
  if (e instanceof FetchError) {
    return e.code === "bad-data" || e.code === "incomplete" ? EXIT.verification : EXIT.network;
  }
  if (isCreateError(e)) return e.code === "read" ? EXIT.disk : EXIT.badInput;
  if (e instanceof StorageError) return EXIT.disk;
  if (e instanceof Interrupted) return EXIT.interrupted;
  return EXIT.internal;
}

/**
 * A {@linkcode CreateError}, known by its name: its class lives in `lib/create.ts`, which loads `node:fs`, and only
 * `create` and `demo` load that module (and only they can throw one).
 */
function isCreateError(e: unknown): e is CreateError {
  return e instanceof Error && e.name === "CreateError" && "code" in e;
}

/** The complete line names the data `DIR/<name>` when a data folder other than `.` was given. */
function reporterOptions(o: CliOptions): ReporterOptions {
  return o.out === "." ? {} : { dataPath: (name) => join(o.out, name) };
}

/** Runs btfetch with `args`; returns the exit code. */
export async function main(args: readonly string[], sinks: ReportSinks = processSinks()): Promise<number> {
  const t0 = performance.now();
  let json = args.includes("--json");
  let debug = args.includes("--debug");
  const report = () => new Reporter(sinks, json, false);
  try {
    const o = parseCli(args);
    json = o.json;
    debug = o.debug;
    const r = new Reporter(sinks, o.json, o.quiet, reporterOptions(o));
    switch (o.command) {
      case "help":
        sinks.stdout(HELP);
        return EXIT.ok;
      case "version":
        sinks.stdout(`btfetch ${VERSION}\n`);
        return EXIT.ok;
      case "info": {
        const { runInfo } = await import("./info.ts");
        await runInfo(o, r, sinks.stdout);
        return EXIT.ok;
      }
      case "get":
      case "seed": {
        // the writer thread first: its start-up (it loads node:fs and node:crypto) overlaps the loading of get's modules
        const thread = await import("../storage/writer_thread.ts");
        thread.prestartWriterThread();
        const { runGet } = await import("./get.ts").catch((e) => {
          thread.discardWriterThread(); // runGet's own cleanup never runs: the thread must not keep the process alive
          throw e;
        });
        await runGet(o, r, o.command === "seed");
        return EXIT.ok;
      }
      case "verify": {
        const { runVerify } = await import("./verify.ts");
        return (await runVerify(o, r, o.json ? () => {} : sinks.stdout)) ? EXIT.ok : EXIT.verification;
      }
      case "create": {
        const { runCreate } = await import("./create.ts");
        await runCreate(o, r);
        return EXIT.ok;
      }
      case "magnet": {
        const { meta } = await loadTorrent(o.source ?? "");
        if (o.json) r.json_({ event: "magnet", t: 0, magnet: magnetFromMetainfo(meta) });
        else sinks.stdout(magnetFromMetainfo(meta) + "\n");
        const left = magnetLeftOutNote(meta);
        if (left) r.say(`Note: ${left}`);
        return EXIT.ok;
      }
      case "completion": {
        const { completionScript } = await import("./completion.ts");
        sinks.stdout(completionScript(o.source as Shell));
        return EXIT.ok;
      }
      case "demo": {
        const { runDemo } = await import("./demo.ts");
        const summary = await runDemo(o, r, sinks.stderr);
        return summary.all_verified ? EXIT.ok : EXIT.verification;
      }
    }
  } catch (e) {
    const code = exitCodeOf(e);
    const message = code === EXIT.internal
      ? `Internal error (a bug in btfetch, please report it): ${e instanceof Error ? e.message : String(e)}`
      : errorText(e);
    report().json_({ event: "error", t: Math.round(performance.now() - t0), code, message });
    sinks.stderr(`btfetch: ${message.split("\n")[0]}\n`);
    if (code === EXIT.usage && !json) sinks.stderr("Try 'btfetch --help'.\n");
    if (debug && e instanceof Error && e.stack) sinks.stderr(e.stack + "\n");
    return code;
  }
}
