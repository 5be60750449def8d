/**
 * The command line: which command, which source, which options. Parsing and validation only; nothing runs here.
 * @module
 */
import { AddressError, parseAddress, type PeerAddress } from "../address.ts";
import { MAX_PEERS_PER_TORRENT } from "../limits.ts";
import { ArgvError, type ArgvOption, parseArgv } from "./argv.ts";
import { parseDuration, parseSize } from "./units.ts";
import { UsageError } from "./usage_error.ts";

/** The commands btfetch knows. */
export type Command =
  | "get"
  | "info"
  | "seed"
  | "verify"
  | "create"
  | "magnet"
  | "demo"
  | "completion"
  | "help"
  | "version";

/** Each command, with one line on what it does (help, completion and "did you mean" read this table). */
export const COMMANDS: Readonly<Record<Command, string>> = {
  get: "fetch a torrent's files (the default command)",
  info: "show a torrent's name, info-hash, size, files, trackers and magnet",
  seed: "verify the data at DIR/<name>, then seed it",
  verify: "check the data at DIR/<name> against the piece hashes",
  create: "write a .torrent for a file or folder",
  magnet: "print a torrent's magnet link",
  demo: "a loopback swarm that seeds and fetches a generated payload",
  completion: "print a shell completion script (bash, zsh or fish)",
  help: "show the help",
  version: "show the version",
};

/** The shells `btfetch completion` writes a script for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;
/** One of {@linkcode SHELLS}. */
export type Shell = typeof SHELLS[number];

/** Everything the command line said, checked. */
export interface CliOptions {
  readonly command: Command;
  /** The torrent, magnet or path argument (`-` is standard input); the shell for `completion`. */
  readonly source?: string;
  /**
   * get, seed, verify: the data folder (files are at `out/<name>`), from `-o/--out` or `-d/--dir`, default `.`;
   * demo: where to keep its files (`.`: a temporary folder).
   */
  readonly out: string;
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
  /** get and seed: the local address to listen on (TCP for peers, UDP for the DHT). */
  readonly bind?: string;
  /** get: stream the selected file to standard output. */
  readonly stdout: boolean;
}

/** One flag: how it parses, which commands take it, and what completion says of it. */
export interface FlagSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly multiple?: boolean;
  /** The value's placeholder; completion offers folders for `DIR`, files for `FILE` and `PATH`. */
  readonly value?: string;
  /** A command whose value is another kind of thing (`create -o FILE`). */
  readonly valueFor?: Partial<Record<Command, string>>;
  /** The commands that take it. */
  readonly commands: readonly Command[];
  /** One line on what it does. */
  readonly help: string;
}

const ALL: readonly Command[] = Object.keys(COMMANDS) as Command[];
const DATA: readonly Command[] = ["get", "seed", "verify"];
const SWARM: readonly Command[] = ["get", "seed"];

/** Every flag: the one table parsing, per-command checks, suggestions and completion scripts read. */
export const FLAGS: Readonly<Record<string, FlagSpec>> = {
  out: {
    type: "string",
    short: "o",
    value: "DIR",
    valueFor: { create: "FILE" },
    commands: [...DATA, "create", "demo"],
    help: "the data folder (files at DIR/<name>; default: current folder); create: the .torrent to write",
  },
  dir: { type: "string", short: "d", value: "DIR", commands: DATA, help: "the data folder (same as --out)" },
  select: { type: "string", value: "1,3-5", commands: ["get"], help: "fetch only these files (numbers as info shows)" },
  peer: { type: "string", multiple: true, value: "HOST:PORT", commands: SWARM, help: "connect to this peer too" },
  tracker: {
    type: "string",
    short: "t",
    multiple: true,
    value: "URL",
    commands: [...SWARM, "create"],
    help: "announce to this tracker too (create: commas make one tier)",
  },
  "max-peers": { type: "string", value: "N", commands: SWARM, help: "connected peers at most (default 50)" },
  port: { type: "string", short: "p", value: "N", commands: SWARM, help: "listen for peers on this port" },
  timeout: { type: "string", value: "30m", commands: ["get"], help: "give up after this long" },
  "stall-timeout": { type: "string", value: "2m", commands: ["get"], help: "give up when nothing verifies this long" },
  check: { type: "boolean", commands: SWARM, help: "hash the data on disk even if the resume record is fresh" },
  sequential: { type: "boolean", commands: ["get"], help: "fetch pieces in order" },
  seed: { type: "boolean", commands: ["get"], help: "keep seeding after the download, until stopped" },
  "seed-ratio": { type: "string", value: "R", commands: SWARM, help: "seed until uploaded reaches R x size" },
  "seed-time": { type: "string", value: "10m", commands: SWARM, help: "seed for this long" },
  "max-download-rate": { type: "string", value: "10M", commands: ["get"], help: "bytes per second at most" },
  "max-upload-rate": { type: "string", value: "1M", commands: SWARM, help: "bytes per second at most" },
  "save-torrent": {
    type: "string",
    value: "FILE",
    commands: ["get"],
    help: "with a magnet: write the .torrent made from the metadata",
  },
  "metadata-timeout": {
    type: "string",
    value: "5m",
    commands: ["get"],
    help: "with a magnet: give up on the metadata after this long",
  },
  "no-dht": { type: "boolean", commands: SWARM, help: "do not use the DHT" },
  "dht-bootstrap": {
    type: "string",
    multiple: true,
    value: "HOST:PORT",
    commands: SWARM,
    help: "bootstrap the DHT from this node",
  },
  "dht-state": { type: "string", value: "FILE", commands: SWARM, help: "keep the DHT's state in this file" },
  "no-pex": { type: "boolean", commands: SWARM, help: "do not exchange peers with peers" },
  bind: {
    type: "string",
    value: "ADDRESS",
    commands: SWARM,
    help: "listen for peers and the DHT on this local address only (e.g. a VPN interface's)",
  },
  stdout: {
    type: "boolean",
    commands: ["get"],
    help: "write the selected file (--select N, or the only one) in order to standard output as it verifies",
  },
  "piece-size": { type: "string", value: "256K", commands: ["create"], help: "piece length, or auto" },
  "web-seed": {
    type: "string",
    short: "w",
    multiple: true,
    value: "URL",
    commands: ["get", "create"],
    help: "a web seed (BEP 19): get fetches from it too, create puts it in the torrent",
  },
  private: { type: "boolean", commands: ["create"], help: "mark the torrent private (BEP 27)" },
  comment: { type: "string", value: "TEXT", commands: ["create"], help: "a comment in the torrent" },
  size: { type: "string", value: "64M", commands: ["demo"], help: "the payload size" },
  leechers: { type: "string", value: "N", commands: ["demo"], help: "how many leechers (1-16)" },
  json: { type: "boolean", commands: ALL, help: "one JSON event per line on stdout" },
  quiet: { type: "boolean", short: "q", commands: ALL, help: "no progress on stderr" },
  debug: { type: "boolean", commands: ALL, help: "stack traces for internal errors" },
  help: { type: "boolean", short: "h", commands: ALL, help: "show the help" },
  version: { type: "boolean", short: "V", commands: ALL, help: "show the version" },
};

const PARSE_OPTIONS: Readonly<Record<string, ArgvOption>> = Object.fromEntries(
  Object.entries(FLAGS).map(([name, f]) => [name, { type: f.type, short: f.short, multiple: f.multiple }]),
);

/** How {@linkcode parseCli} looks at the file system (injectable for tests). */
export interface ParseEnv {
  /** Whether `path` names an existing file or folder. */
  readonly exists?: (path: string) => boolean;
}

function pathExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The most edits (Levenshtein distance) between a mistyped name and the name suggested for it. */
const MAX_SUGGEST_DISTANCE = 2;

/**
 * The Levenshtein distance between `a` and `b` (insertions, deletions, substitutions).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(editDistance("ouput", "out"), 2);
 * eq(editDistance("inf", "info"), 1);
 * ```
 */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

/**
 * The candidate nearest to `word` within {@linkcode MAX_SUGGEST_DISTANCE} edits (and fewer edits than `word` has
 * letters, so a short word is not "corrected" into anything), or undefined.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(suggest("ouput", ["out", "port", "peer"]), "out");
 * eq(suggest("zzzzz", ["out"]), undefined);
 * ```
 */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= MAX_SUGGEST_DISTANCE && bestD < word.length ? best : undefined;
}

/** The usage error for a parser complaint, with a suggestion for a mistyped flag. */
function parserError(e: unknown): UsageError {
  const text = e instanceof Error ? e.message.replace(/\. To specify a positional.*$/s, "") : String(e);
  const m = /^Unknown option '(--?)([^'=]+)'/.exec(text);
  if (m) {
    const names = m[1] === "--" ? Object.keys(FLAGS) : [];
    const near = suggest(m[2], names);
    if (near) return new UsageError(`${text}; did you mean '--${near}'?`);
  }
  return new UsageError(text);
}

/**
 * Whether the first word of the command line is a mistyped command rather than a torrent: it is not an existing
 * path, has no `.`, `/`, `\` or `:` (which a path, URL or magnet would have) and is near a command's name.
 */
function mistypedCommand(word: string, exists: (p: string) => boolean): string | undefined {
  if (/[./\\:]/.test(word) || /^[0-9a-f]{40}$/i.test(word) || /^[a-z2-7]{32}$/i.test(word) || exists(word)) {
    return undefined;
  }
  return suggest(word, Object.keys(COMMANDS));
}

/**
 * Parses `argv` (without the program name). `get`, `seed` and `verify` take the data folder as `-o/--out` or
 * `-d/--dir` (the current folder by default); a first word that looks like a mistyped command is reported as one.
 * @throws {UsageError} on an unknown flag (suggesting the nearest), a flag the command does not take, a missing
 * argument or a bad value.
 * @example
 * ```ts
 * import { strictEqual as eq, deepStrictEqual as deq } from "node:assert/strict";
 * const o = parseCli(["a.torrent", "-o", "dl", "--peer", "127.0.0.1:6881", "--timeout", "10m"]);
 * eq(o.command, "get");
 * eq(o.out, "dl");
 * deq(o.peers, [{ host: "127.0.0.1", port: 6881 }]);
 * eq(o.timeoutMs, 600_000);
 * eq(parseCli(["verify", "a.torrent", "-d", "dl"]).out, "dl");
 * ```
 */
export function parseCli(argv: readonly string[], env: ParseEnv = {}): CliOptions {
  let parsed;
  try {
    parsed = parseArgv(argv, PARSE_OPTIONS);
  } catch (e) {
    // the parser's own complaints about the command line; anything else is a bug
    if (e instanceof ArgvError) throw parserError(e);
    throw e;
  }
  const v = parsed.values;
  const str = (k: string): string | undefined => {
    const x = v[k];
    return typeof x === "string" ? x : undefined;
  };
  const bool = (k: string): boolean => v[k] === true;
  const list = (k: string): string[] => {
    const x = v[k];
    return Array.isArray(x) ? x.filter((s): s is string => typeof s === "string") : [];
  };
  const pos = parsed.positionals;
  let command: Command = "get";
  if (pos.length > 0 && Object.hasOwn(COMMANDS, pos[0])) command = pos.shift() as Command;
  else if (pos.length > 0 && !bool("help") && !bool("version")) {
    const near = mistypedCommand(pos[0], env.exists ?? pathExists);
    if (near) throw new UsageError(`Unknown command "${pos[0]}"; did you mean "${near}"?`);
  }
  if (bool("help")) command = "help";
  else if (bool("version")) command = "version";
  if (command === "help" || command === "version") return defaults(command, bool("json"));

  for (const k of Object.keys(v)) {
    if (!FLAGS[k].commands.includes(command)) {
      const takers = Object.keys(COMMANDS).filter((c) => FLAGS[k].commands.includes(c as Command));
      throw new UsageError(
        `${command} does not take --${k} (${takers.join(", ")} do${takers.length === 1 ? "es" : ""})`,
      );
    }
  }
  const wantsSource = command !== "demo";
  if (wantsSource && pos.length === 0) {
    throw new UsageError(
      command === "get"
        ? "Missing the torrent: btfetch <file.torrent|URL|magnet> [options]"
        : command === "completion"
        ? "Missing the shell: btfetch completion bash|zsh|fish"
        : `Missing the torrent: btfetch ${command} <${command === "create" ? "path" : "file.torrent"}>`,
    );
  }
  if (pos.length > (wantsSource ? 1 : 0)) throw new UsageError(`Unexpected argument "${pos[wantsSource ? 1 : 0]}"`);
  if (command === "completion" && !(SHELLS as readonly string[]).includes(pos[0])) {
    throw new UsageError(`completion: "${pos[0]}" is not a shell this knows (bash, zsh or fish)`);
  }
  if (str("out") !== undefined && str("dir") !== undefined && command !== "create") {
    throw new UsageError("-o/--out and -d/--dir both name the data folder: give one of them");
  }
  if (command === "create" && !str("out")) throw new UsageError("create needs -o FILE for the .torrent to write");

  const int = (flag: string, text: string | undefined, min: number, max: number): number | undefined => {
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
      throw new UsageError(`--${flag}: "${text}" must be a whole number from ${min} to ${max}`);
    }
    return Number(text);
  };
  const peers = list("peer").map((p) => {
    try {
      return parseAddress(p);
    } catch (e) {
      if (e instanceof AddressError) throw new UsageError(`--peer: ${e.message}`);
      throw e;
    }
  });
  const trackers = list("tracker");
  for (const t of trackers) {
    for (const url of t.split(",")) {
      if (!/^(https?|udp):\/\/[^\s]+$/i.test(url)) {
        throw new UsageError(`--tracker: "${url}" is not an http, https or udp URL`);
      }
    }
  }
  let seedRatio: number | undefined;
  const ratioText = str("seed-ratio");
  if (ratioText !== undefined) {
    seedRatio = Number(ratioText);
    if (!/^\d+(\.\d+)?$/.test(ratioText) || !Number.isFinite(seedRatio)) {
      throw new UsageError(`--seed-ratio: "${ratioText}" is not a ratio (e.g. 1.5)`);
    }
  }
  const pieceText = str("piece-size");
  const pieceSize = pieceText === undefined || pieceText === "auto" ? undefined : parseSize(pieceText, "--piece-size");
  if (pieceSize !== undefined && (pieceSize < 16384 || (pieceSize & (pieceSize - 1)) !== 0 || pieceSize > 2 ** 28)) {
    throw new UsageError("--piece-size: must be a power of two from 16K to 256M, or auto");
  }
  const dhtBootstrap = list("dht-bootstrap");
  for (const b of dhtBootstrap) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(b);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      throw new UsageError(`--dht-bootstrap: "${b}" is not HOST:PORT (e.g. router.bittorrent.com:6881)`);
    }
  }
  if (bool("no-dht") && (dhtBootstrap.length > 0 || str("dht-state") !== undefined)) {
    throw new UsageError("--no-dht turns the DHT off: drop --dht-bootstrap and --dht-state, or --no-dht");
  }
  if (bool("stdout") && bool("json")) {
    throw new UsageError("--stdout writes the file's bytes to standard output: use it without --json");
  }
  const webSeeds = list("web-seed");
  for (const w of webSeeds) {
    if (!/^https?:\/\/\S+$/i.test(w)) throw new UsageError(`--web-seed: "${w}" is not an http(s) URL`);
  }
  const select = str("select");
  const size = str("size");
  const seedTime = str("seed-time");
  const maxDown = str("max-download-rate");
  const maxUp = str("max-upload-rate");
  return {
    command,
    source: wantsSource ? pos[0] : undefined,
    out: (command === "create" ? undefined : str("out") ?? str("dir")) ?? ".",
    select: select === undefined ? undefined : parseSelect(select),
    peers,
    trackers: command === "create" ? [] : trackers.flatMap((t) => t.split(",")),
    maxPeers: int("max-peers", str("max-peers"), 1, MAX_PEERS_PER_TORRENT) ?? 50,
    port: int("port", str("port"), 0, 65535),
    timeoutMs: positiveDuration(str("timeout"), "--timeout"),
    stallTimeoutMs: positiveDuration(str("stall-timeout"), "--stall-timeout"),
    json: bool("json"),
    quiet: bool("quiet"),
    debug: bool("debug"),
    check: bool("check"),
    sequential: bool("sequential"),
    seed: bool("seed"),
    seedRatio,
    seedTimeMs: seedTime === undefined ? undefined : parseDuration(seedTime, "--seed-time"),
    maxDownloadRate: maxDown === undefined ? undefined : parseSize(maxDown, "--max-download-rate"),
    maxUploadRate: maxUp === undefined ? undefined : parseSize(maxUp, "--max-upload-rate"),
    output: command === "create" ? str("out") : undefined,
    saveTorrent: str("save-torrent"),
    pieceSize,
    announceTiers: command === "create" ? trackers.map((t) => t.split(",")) : [],
    webSeeds,
    private: bool("private"),
    comment: str("comment"),
    size: size === undefined ? undefined : parseSize(size, "--size"),
    leechers: int("leechers", str("leechers"), 1, 16),
    dht: !bool("no-dht"),
    dhtBootstrap,
    dhtState: str("dht-state"),
    pex: !bool("no-pex"),
    metadataTimeoutMs: positiveDuration(str("metadata-timeout"), "--metadata-timeout"),
    bind: bindAddress(str("bind")),
    stdout: bool("stdout"),
  };
}

/** `--bind`: an IPv4 or IPv6 address literal (a host name would be ambiguous about which address). */
function bindAddress(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const t = text.replace(/^\[(.*)\]$/, "$1");
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(t) && t.split(".").every((x) => Number(x) <= 255)) return t;
  if (t.includes(":") && /^[0-9a-fA-F:.]+$/.test(t)) return t;
  throw new UsageError(`--bind: "${text}" is not an IP address (e.g. 10.8.0.2 or fd00::2)`);
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
    stdout: false,
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
