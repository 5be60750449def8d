/**
 * The command line: which command, which source, which options. Parsing and validation only; nothing runs here.
 * @module
 */
import { parseArgs } from "node:util";
import { AddressError, parseAddress, type PeerAddress } from "../address.ts";
import { MAX_PEERS_PER_TORRENT } from "../limits.ts";
import { parseDuration, parseSize } from "./units.ts";
import { UsageError } from "./usage_error.ts";

/** The commands btfetch knows. */
export type Command = "get" | "info" | "seed" | "verify" | "create" | "magnet" | "demo" | "help" | "version";

const COMMANDS: readonly Command[] = ["get", "info", "seed", "verify", "create", "magnet", "demo", "help", "version"];

/** Everything the command line said, checked. */
export interface CliOptions {
  readonly command: Command;
  /** The torrent, magnet or path argument. */
  readonly source?: string;
  readonly out: string;
  readonly dir?: string;
  /** 1-based file indexes as `info` prints them. */
  readonly select?: readonly number[];
  readonly peers: readonly PeerAddress[];
  readonly trackers: readonly string[];
  readonly maxPeers: number;
  readonly port?: number;
  readonly timeoutMs?: number;
  readonly stallTimeoutMs?: number;
  readonly json: boolean;
  readonly quiet: boolean;
  readonly debug: boolean;
  readonly check: boolean;
  readonly sequential: boolean;
  readonly seed: boolean;
  readonly seedRatio?: number;
  readonly seedTimeMs?: number;
  readonly maxDownloadRate?: number;
  readonly maxUploadRate?: number;
  /** create: output file, piece size, trackers by tier, web seeds, private flag, comment. */
  readonly output?: string;
  readonly pieceSize?: number;
  readonly announceTiers: readonly (readonly string[])[];
  readonly webSeeds: readonly string[];
  readonly private: boolean;
  readonly comment?: string;
  /** get with a magnet: where to write the .torrent made from the fetched metadata. */
  readonly saveTorrent?: string;
  /** demo: payload size and leecher count. */
  readonly size?: number;
  readonly leechers?: number;
  /** get and seed: use the DHT (not with --no-dht), bootstrap nodes (`HOST:PORT`), where its state is kept. */
  readonly dht: boolean;
  readonly dhtBootstrap: readonly string[];
  readonly dhtState?: string;
  /** get and seed: exchange peers with peers (BEP 11), not with --no-pex. */
  readonly pex: boolean;
  /** get with a magnet: give up on the metadata after this long. */
  readonly metadataTimeoutMs?: number;
}

const OPTIONS = {
  out: { type: "string", short: "o" },
  dir: { type: "string", short: "d" },
  select: { type: "string" },
  peer: { type: "string", multiple: true },
  tracker: { type: "string", multiple: true, short: "t" },
  "max-peers": { type: "string" },
  port: { type: "string", short: "p" },
  timeout: { type: "string" },
  "stall-timeout": { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  debug: { type: "boolean" },
  check: { type: "boolean" },
  sequential: { type: "boolean" },
  seed: { type: "boolean" },
  "seed-ratio": { type: "string" },
  "seed-time": { type: "string" },
  "max-download-rate": { type: "string" },
  "max-upload-rate": { type: "string" },
  "piece-size": { type: "string" },
  "web-seed": { type: "string", multiple: true, short: "w" },
  private: { type: "boolean" },
  comment: { type: "string" },
  size: { type: "string" },
  leechers: { type: "string" },
  "save-torrent": { type: "string" },
  "no-dht": { type: "boolean" },
  "no-pex": { type: "boolean" },
  "dht-bootstrap": { type: "string", multiple: true },
  "dht-state": { type: "string" },
  "metadata-timeout": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/** Which flags each command takes (besides --help, --json, --quiet, --debug). */
const ALLOWED: Record<Command, readonly string[]> = {
  get: [
    "out",
    "select",
    "peer",
    "tracker",
    "max-peers",
    "port",
    "timeout",
    "stall-timeout",
    "check",
    "sequential",
    "seed",
    "seed-ratio",
    "seed-time",
    "max-download-rate",
    "max-upload-rate",
    "save-torrent",
    "web-seed",
    "metadata-timeout",
    "no-dht",
    "dht-bootstrap",
    "dht-state",
    "no-pex",
  ],
  info: [],
  seed: [
    "dir",
    "peer",
    "tracker",
    "max-peers",
    "port",
    "seed-ratio",
    "seed-time",
    "max-upload-rate",
    "check",
    "no-dht",
    "dht-bootstrap",
    "dht-state",
    "no-pex",
  ],
  verify: ["dir"],
  create: ["out", "tracker", "piece-size", "web-seed", "private", "comment"],
  magnet: [],
  demo: ["size", "leechers", "out"],
  help: [],
  version: [],
};

/**
 * Parses `argv` (without the program name).
 * @throws {UsageError} on an unknown flag, a flag the command does not take, a missing argument or a bad value.
 * @example
 * ```ts
 * import { strictEqual as eq, deepStrictEqual as deq } from "node:assert/strict";
 * const o = parseCli(["a.torrent", "-o", "dl", "--peer", "127.0.0.1:6881", "--timeout", "10m"]);
 * eq(o.command, "get");
 * eq(o.out, "dl");
 * deq(o.peers, [{ host: "127.0.0.1", port: 6881 }]);
 * eq(o.timeoutMs, 600_000);
 * ```
 */
export function parseCli(argv: readonly string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message.replace(/\. To specify a positional.*$/s, "") : String(e));
  }
  const v = parsed.values;
  const pos = parsed.positionals;
  let command: Command = "get";
  if (pos.length > 0 && (COMMANDS as readonly string[]).includes(pos[0])) command = pos.shift() as Command;
  if (v.help) command = "help";
  else if (v.version) command = "version";
  if (command === "help" || command === "version") return defaults(command, v.json ?? false);

  const allowed = new Set([...ALLOWED[command], "json", "quiet", "debug", "help", "version"]);
  for (const k of Object.keys(v)) {
    if (!allowed.has(k)) throw new UsageError(`${command} does not take --${k}`);
  }
  const wantsSource = command !== "demo";
  if (wantsSource && pos.length === 0) {
    throw new UsageError(
      command === "get"
        ? "Missing the torrent: btfetch <file.torrent|URL> [options]"
        : `Missing the argument of ${command}`,
    );
  }
  if (pos.length > (wantsSource ? 1 : 0)) throw new UsageError(`Unexpected argument "${pos[wantsSource ? 1 : 0]}"`);
  if ((command === "seed" || command === "verify") && !v.dir) throw new UsageError(`${command} needs --dir DIR`);
  if (command === "create" && !v.out) throw new UsageError("create needs -o FILE for the .torrent to write");

  const int = (flag: string, text: string | undefined, min: number, max: number): number | undefined => {
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
      throw new UsageError(`--${flag}: "${text}" must be a whole number from ${min} to ${max}`);
    }
    return Number(text);
  };
  const peers = (v.peer ?? []).map((p) => {
    try {
      return parseAddress(p);
    } catch (e) {
      if (e instanceof AddressError) throw new UsageError(`--peer: ${e.message}`);
      throw e;
    }
  });
  const trackers = v.tracker ?? [];
  for (const t of trackers) {
    for (const url of t.split(",")) {
      if (!/^(https?|udp):\/\/[^\s]+$/i.test(url)) {
        throw new UsageError(`--tracker: "${url}" is not an http, https or udp URL`);
      }
    }
  }
  let seedRatio: number | undefined;
  if (v["seed-ratio"] !== undefined) {
    seedRatio = Number(v["seed-ratio"]);
    if (!/^\d+(\.\d+)?$/.test(v["seed-ratio"]) || !Number.isFinite(seedRatio)) {
      throw new UsageError(`--seed-ratio: "${v["seed-ratio"]}" is not a ratio (e.g. 1.5)`);
    }
  }
  const pieceSize = v["piece-size"] === undefined || v["piece-size"] === "auto"
    ? undefined
    : parseSize(v["piece-size"], "--piece-size");
  if (pieceSize !== undefined && (pieceSize < 16384 || (pieceSize & (pieceSize - 1)) !== 0 || pieceSize > 2 ** 28)) {
    throw new UsageError("--piece-size: must be a power of two from 16K to 256M, or auto");
  }
  const dhtBootstrap = v["dht-bootstrap"] ?? [];
  for (const b of dhtBootstrap) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(b);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      throw new UsageError(`--dht-bootstrap: "${b}" is not HOST:PORT (e.g. router.bittorrent.com:6881)`);
    }
  }
  if (v["no-dht"] && (dhtBootstrap.length > 0 || v["dht-state"] !== undefined)) {
    throw new UsageError("--no-dht turns the DHT off: drop --dht-bootstrap and --dht-state, or --no-dht");
  }
  const webSeeds = v["web-seed"] ?? [];
  for (const w of webSeeds) {
    if (!/^https?:\/\/\S+$/i.test(w)) throw new UsageError(`--web-seed: "${w}" is not an http(s) URL`);
  }
  return {
    command,
    source: wantsSource ? pos[0] : undefined,
    out: v.out ?? ".",
    dir: v.dir,
    select: v.select === undefined ? undefined : parseSelect(v.select),
    peers,
    trackers: command === "create" ? [] : trackers.flatMap((t) => t.split(",")),
    maxPeers: int("max-peers", v["max-peers"], 1, MAX_PEERS_PER_TORRENT) ?? 50,
    port: int("port", v.port, 0, 65535),
    timeoutMs: positiveDuration(v.timeout, "--timeout"),
    stallTimeoutMs: positiveDuration(v["stall-timeout"], "--stall-timeout"),
    json: v.json ?? false,
    quiet: v.quiet ?? false,
    debug: v.debug ?? false,
    check: v.check ?? false,
    sequential: v.sequential ?? false,
    seed: v.seed ?? false,
    seedRatio,
    seedTimeMs: v["seed-time"] === undefined ? undefined : parseDuration(v["seed-time"], "--seed-time"),
    maxDownloadRate: v["max-download-rate"] === undefined
      ? undefined
      : parseSize(v["max-download-rate"], "--max-download-rate"),
    maxUploadRate: v["max-upload-rate"] === undefined
      ? undefined
      : parseSize(v["max-upload-rate"], "--max-upload-rate"),
    output: command === "create" ? v.out : undefined,
    saveTorrent: v["save-torrent"],
    pieceSize,
    announceTiers: command === "create" ? trackers.map((t) => t.split(",")) : [],
    webSeeds,
    private: v.private ?? false,
    comment: v.comment,
    size: v.size === undefined ? undefined : parseSize(v.size, "--size"),
    leechers: int("leechers", v.leechers, 1, 16),
    dht: !(v["no-dht"] ?? false),
    dhtBootstrap,
    dhtState: v["dht-state"],
    pex: !(v["no-pex"] ?? false),
    metadataTimeoutMs: positiveDuration(v["metadata-timeout"], "--metadata-timeout"),
  };
}

function positiveDuration(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text, flag);
  if (ms < 1000) throw new UsageError(`${flag}: "${text}" is under a second`);
  return ms;
}

function defaults(command: Command, json: boolean): CliOptions {
  return {
    command,
    out: ".",
    peers: [],
    trackers: [],
    maxPeers: 50,
    json,
    quiet: false,
    debug: false,
    check: false,
    sequential: false,
    seed: false,
    announceTiers: [],
    webSeeds: [],
    private: false,
    dht: false,
    dhtBootstrap: [],
    pex: false,
  };
}

/**
 * Parses `--select 1,3-5` into sorted, distinct 1-based indexes.
 * @throws {UsageError} on anything but positive integers and ranges.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(parseSelect("3-5,1,4"), [1, 3, 4, 5]);
 * ```
 */
export function parseSelect(text: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new UsageError(`--select: "${part}" is not an index or a range like 3-5`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b < a || b - a > 1_000_000) throw new UsageError(`--select: bad range "${part}" (indexes start at 1)`);
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}
