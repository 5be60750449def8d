/**
 * What the CLI shows while a command runs: `--json` events on stdout, and progress on stderr: on a TTY one live line
 * fitted to the terminal's width (read again before each redraw) and redrawn in place, so it never wraps and leaves
 * nothing behind; a plain line every few seconds otherwise; nothing with `--quiet`. `NO_COLOR` is honoured.
 *
 * The end of a run is one line: the `Done in …` summary on success when the run moved or hashed bytes, "Stopped
 * seeding …" when a signal ended seeding, and on failure the error line alone (printed by `main.ts`).
 * @module
 */
import type { TimedEvent } from "../engine/events.ts";
import { formatBytes, formatEta } from "./units.ts";

/** How often a plain (non-TTY) progress line is written while fetching. */
const PLAIN_EVERY_MS = 5_000;
/** How often a plain progress line is written while seeding, which may last for days. */
const PLAIN_SEED_EVERY_MS = 60_000;
/** The live line's bar: fewer cells than this is no bar, more is wasted room. */
const BAR_MIN = 8;
const BAR_MAX = 30;
/** Columns left free after the live line: the terminal echoes Ctrl-C as `^C` after it, which must not wrap. */
const LIVE_MARGIN = 2;
/** The width assumed when the terminal's cannot be read. */
const FALLBACK_COLUMNS = 80;

/** Where a {@linkcode Reporter} writes, so tests can capture it. */
export interface ReportSinks {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly stderrIsTty: boolean;
  readonly color: boolean;
  /** The terminal's width in columns, read before each redraw of the live line (default 80). */
  readonly columns?: () => number;
}

/** The process's own stdout and stderr; the width is the console's. */
export function processSinks(): ReportSinks {
  const enc = new TextEncoder();
  return {
    stdout: (t) => writeAllSync(Deno.stdout, enc.encode(t)),
    stderr: (t) => writeAllSync(Deno.stderr, enc.encode(t)),
    stderrIsTty: Deno.stderr.isTerminal(),
    color: Deno.stderr.isTerminal() && !Deno.env.get("NO_COLOR"),
    columns: () => {
      try {
        return Deno.consoleSize().columns;
      } catch {
        return FALLBACK_COLUMNS;
      }
    },
  };
}

function writeAllSync(w: { writeSync(b: Uint8Array): number }, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += w.writeSync(b.subarray(off));
}

/** One piece of a live line. */
export interface LiveField {
  /** The text with its label (`down 1.2 MiB/s`). */
  readonly text: string;
  /** A shorter form for a tight line (`1.2 MiB/s`); `text` when absent. */
  readonly tight?: string;
  /** Which goes when room runs out: higher ranks first; rank 0 is never dropped. */
  readonly rank: number;
}

/** A live line laid out for a width: the bar's cells (null without a bar) and the text after it. */
export interface LiveLayout {
  readonly bar: string | null;
  readonly text: string;
}

/**
 * Lays out a live line in at most `columns - 2` columns ({@linkcode LIVE_MARGIN}: the terminal's `^C` echo after
 * it must not wrap either), so the line never wraps and `\r` plus erase-line redraws or clears it. Fields are
 * dropped, highest rank first, with full labels and with tight ones: the tight layout wins when it keeps a more
 * important field; dropped fields that still fit come back; a bar (when `bar` is given, with its rank) takes the room
 * left, from {@linkcode BAR_MIN} to {@linkcode BAR_MAX} cells. What cannot fit even alone is cut.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const fields = [{ text: "50.0%", rank: 0 }, { text: "down 1 MiB/s", tight: "1 MiB/s", rank: 1 }];
 * eq(fitLine(fields, 80).text, "50.0%  down 1 MiB/s");
 * eq(fitLine(fields, 16).text, "50.0% 1 MiB/s");
 * eq(fitLine(fields, 10).text, "50.0%");
 * eq(fitLine(fields, 80, { fraction: 0.5, rank: 2 }).bar, "#".repeat(15) + "-".repeat(15));
 * ```
 */
export function fitLine(
  fields: readonly LiveField[],
  columns: number,
  bar?: { readonly fraction: number; readonly rank: number },
): LiveLayout {
  const room = Math.max(1, columns - LIVE_MARGIN);
  // index fields.length stands for the bar
  const BAR = fields.length;
  const rankOf = (i: number) => (i === BAR ? bar?.rank ?? 0 : fields[i].rank);
  const all = bar ? [BAR, ...fields.keys()] : [...fields.keys()];
  const dropOrder = all.filter((i) => rankOf(i) > 0).sort((a, b) => rankOf(b) - rankOf(a) || b - a);
  const width = (kept: ReadonlySet<number>, tight: boolean): number => {
    let n = 0;
    let count = 0;
    for (const i of kept) {
      n += i === BAR ? BAR_MIN + 2 : (tight ? fields[i].tight ?? fields[i].text : fields[i].text).length;
      count++;
    }
    return n + Math.max(0, count - 1) * (tight ? 1 : 2);
  };
  const fit = (tight: boolean): Set<number> => {
    const kept = new Set(all);
    for (const i of dropOrder) {
      if (width(kept, tight) <= room) break;
      kept.delete(i);
    }
    // what was dropped for a wider field may fit beside the rest: most important first
    for (const i of [...dropOrder].reverse()) {
      if (kept.has(i)) continue;
      kept.add(i);
      if (width(kept, tight) > room) kept.delete(i);
    }
    return kept;
  };
  const full = fit(false);
  const narrow = fit(true);
  // tight labels when they keep a more important field (the first difference by rank decides), or nothing else fits
  const byImportance = [...all].sort((a, b) => rankOf(a) - rankOf(b) || a - b);
  const first = byImportance.find((i) => full.has(i) !== narrow.has(i));
  const tight = width(full, false) > room || (first !== undefined && narrow.has(first));
  const kept = tight ? narrow : full;
  const sep = tight ? " " : "  ";
  const text = all.filter((i) => i !== BAR && kept.has(i))
    .map((i) => tight ? fields[i].tight ?? fields[i].text : fields[i].text).join(sep);
  if (!bar || !kept.has(BAR)) return { bar: null, text: text.slice(0, room) };
  const cells = Math.min(BAR_MAX, room - text.length - 3);
  const fill = Math.round(Math.min(1, Math.max(0, bar.fraction)) * cells);
  return { bar: "#".repeat(fill) + "-".repeat(cells - fill), text };
}

/**
 * Breaks `text` into lines of at most `width` characters at spaces (a word longer than that is cut).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(wrapText("Done in 5.8 s: downloaded 5.7 MiB", 16), "Done in 5.8 s:\ndownloaded 5.7\nMiB");
 * ```
 */
export function wrapText(text: string, width: number): string {
  if (width < 1 || text.length <= width) return text;
  const lines: string[] = [];
  let line = "";
  // each word with the blanks before it: the first line keeps its indent and double spaces, a new line starts bare
  for (const token of text.match(/\s*\S+/g) ?? []) {
    if (line === "" || line.length + token.length <= width) {
      line += line === "" && lines.length > 0 ? token.trimStart() : token;
    } else {
      lines.push(line);
      line = token.trimStart();
    }
    while (line.length > width) {
      lines.push(line.slice(0, width));
      line = line.slice(width);
    }
  }
  lines.push(line);
  return lines.join("\n");
}

/** `1 peer`, `3 peers`. */
function peers(n: number): string {
  return `${n} peer${n === 1 ? "" : "s"}`;
}

/** A ratio for people: two decimals under 10. */
function ratioText(r: number): string {
  return r < 10 ? r.toFixed(2) : r.toFixed(1);
}

/**
 * What a `seeding` event's `until` says, in words: the engine's prose (`"ratio 2 or 5400 s"`), or the numbers
 * (`{ ratio, time_s }`, null for "until stopped").
 */
function untilText(until: Extract<TimedEvent, { event: "seeding" }>["until"]): string {
  if (until !== null) {
    const parts = [
      until.ratio !== null ? `ratio ${until.ratio}` : "",
      until.time_s !== null ? `${formatEta(until.time_s)} have passed` : "",
    ].filter(Boolean);
    if (parts.length > 0) return parts.join(" or ");
  }
  return "stopped (Ctrl-C)";
}

type DoneEvent = Extract<TimedEvent, { event: "done" }>;

/** Options of a {@linkcode Reporter}. */
export interface ReporterOptions {
  /**
   * How the complete line names the data, given the torrent's name: `get` and `seed` with a data folder give
   * `DIR/<name>` (the caller joins, so this module loads no `node:path`); default: the name.
   */
  readonly dataPath?: (name: string) => string;
}

/** Turns session events into output. */
export class Reporter {
  #lastPlain = -Infinity;
  #barShown = false;
  #name = "";
  /** Bytes of the selected files, once complete (for the seeding ratio). */
  #size = 0;
  /** Bytes found good by hashing the data on disk at the start. */
  #hashed = 0;
  /** When seeding began (event time), or null. */
  #seedingAt: number | null = null;
  #done: DoneEvent | null = null;

  /** Makes a reporter; `json` prints events, `quiet` silences stderr. */
  constructor(
    readonly sinks: ReportSinks,
    readonly json: boolean,
    readonly quiet: boolean,
    readonly options: ReporterOptions = {},
  ) {}

  /** Prints one JSON event line (with `--json`). */
  json_(e: Record<string, unknown>): void {
    if (this.json) this.sinks.stdout(JSON.stringify(e) + "\n");
  }

  /** A line for people on stderr (clearing the live line first; on a TTY wrapped at spaces to its width). */
  say(text: string): void {
    if (this.quiet) return;
    this.#clearBar();
    this.sinks.stderr((this.sinks.stderrIsTty ? wrapText(text, this.#columns() - 1) : text) + "\n");
  }

  #columns(): number {
    return this.sinks.columns?.() ?? FALLBACK_COLUMNS;
  }

  /** Whether a `seeding` event was seen: the download had completed and seeding began. */
  get seeding(): boolean {
    return this.#seedingAt !== null;
  }

  /** The `done` event of the session, once it came. */
  get done(): DoneEvent | null {
    return this.#done;
  }

  /** Handles one session event. */
  event(e: TimedEvent): void {
    this.json_(e as unknown as Record<string, unknown>);
    switch (e.event) {
      case "resume":
        if (e.source === "hash") this.#hashed = e.verified;
        break;
      case "complete":
        this.#size = e.verified;
        break;
      case "seeding":
        this.#seedingAt = e.t;
        break;
      case "done":
        this.#done = e;
        break;
    }
    if (this.quiet) return;
    switch (e.event) {
      case "metadata":
        this.#name = e.name;
        this.say(`${e.name}: ${formatBytes(e.size)} in ${e.files.length} file${e.files.length === 1 ? "" : "s"}`);
        break;
      case "resume":
        if (e.verified > 0) {
          this.say(
            `Found ${formatBytes(e.verified)} already verified on disk (${
              e.source === "resume" ? "resume record" : "hashed"
            })`,
          );
        }
        break;
      case "peer":
        if (e.action === "banned") this.say(`Banned ${e.address}: ${e.reason ?? ""}`);
        break;
      case "warning":
        this.say(`Warning: ${e.message}`);
        break;
      case "internal-error":
        // a bug of ours that cost one connection, not the session: say so, so it gets reported
        this.say(`Internal error (${e.where}${e.peer ? `, peer ${e.peer}` : ""}): ${e.message}; please report it`);
        break;
      case "piece-failed":
        if (!this.json) this.say(`Piece ${e.piece} failed its hash; fetching it again`);
        break;
      case "tracker":
        if (e.error) this.say(`Tracker ${e.url}: ${e.error}`);
        else if (e.warning) this.say(`Tracker ${e.url}: ${e.warning}`);
        break;
      case "checking":
        // only a check that takes a while is shown (an event before the last one comes after a second): missing
        // files are "checked" at once, and a fresh download has nothing worth a line
        if (e.checked < e.total) {
          const f = e.checked / e.total;
          this.live(
            [
              { text: `checking ${(f * 100).toFixed(0)}%`, rank: 0 },
              { text: `${e.checked}/${e.total} pieces`, rank: 2 },
              { text: `elapsed ${formatEta(e.t / 1000)}`, rank: 3 },
            ],
            e.t,
            { fraction: f, rank: 1 },
          );
        }
        break;
      case "progress":
        if (this.#seedingAt !== null) this.#seedingLine(e);
        else this.#downloadLine(e);
        break;
      case "complete":
        this.say(`${this.#where()}: complete, ${formatBytes(e.verified)} verified`);
        break;
      case "seeding":
        this.say(`Seeding until ${untilText(e.until)}`);
        break;
      default:
        break;
    }
  }

  #where(): string {
    return this.options.dataPath?.(this.#name) ?? this.#name;
  }

  #downloadLine(e: Extract<TimedEvent, { event: "progress" }>): void {
    const f = e.total > 0 ? e.verified / e.total : 1;
    const fields: LiveField[] = [
      { text: `${(f * 100).toFixed(1)}%`, rank: 0 },
      { text: `${formatBytes(e.verified)}/${formatBytes(e.total)}`, rank: 5 },
      { text: `down ${formatBytes(e.download_rate)}/s`, tight: `${formatBytes(e.download_rate)}/s`, rank: 3 },
      { text: `up ${formatBytes(e.upload_rate)}/s`, rank: 7 },
      {
        text: peers(e.peers) + (e.web_seeds > 0 ? ` + ${e.web_seeds} web seed${e.web_seeds === 1 ? "" : "s"}` : ""),
        tight: peers(e.peers),
        rank: 6,
      },
    ];
    if (e.eta_s !== null && e.verified < e.total) fields.push({ text: `ETA ${formatEta(e.eta_s)}`, rank: 2 });
    fields.push({ text: `elapsed ${formatEta(e.t / 1000)}`, rank: 1 });
    this.live(fields, e.t, { fraction: f, rank: 4 });
  }

  #seedingLine(e: Extract<TimedEvent, { event: "progress" }>): void {
    const size = this.#size || e.total;
    const ratio = size > 0 ? e.uploaded / size : 0;
    this.live(
      [
        { text: `seeding ${formatEta((e.t - (this.#seedingAt ?? e.t)) / 1000)}`, rank: 0 },
        { text: `uploaded ${formatBytes(e.uploaded)}`, tight: `up ${formatBytes(e.uploaded)}`, rank: 1 },
        { text: `ratio ${ratioText(ratio)}`, rank: 2 },
        { text: `up ${formatBytes(e.upload_rate)}/s`, tight: `${formatBytes(e.upload_rate)}/s`, rank: 3 },
        { text: peers(e.peers), rank: 4 },
      ],
      e.t,
      undefined,
      PLAIN_SEED_EVERY_MS,
    );
  }

  /**
   * Shows a live line: on a TTY, laid out for the terminal's width now and redrawn in place; otherwise a plain line
   * with every field, at most every `plainEveryMs` (by event time `t`).
   */
  live(
    fields: readonly LiveField[],
    t: number,
    bar?: { readonly fraction: number; readonly rank: number },
    plainEveryMs = PLAIN_EVERY_MS,
  ): void {
    if (this.quiet) return;
    if (this.sinks.stderrIsTty) {
      const layout = fitLine(fields, this.#columns(), bar);
      const shown = layout.bar === null
        ? layout.text
        : `[${this.sinks.color ? `\x1b[32m${layout.bar}\x1b[0m` : layout.bar}] ${layout.text}`;
      this.sinks.stderr(`\r\x1b[2K${shown}`);
      this.#barShown = true;
    } else if (t - this.#lastPlain >= plainEveryMs) {
      this.#lastPlain = t;
      this.sinks.stderr(fields.map((f) => f.text).join("  ") + "\n");
    }
  }

  /**
   * The end of a run that did what was asked: `Done in …` with what moved, when bytes moved or were hashed; nothing
   * for a run that found everything already there (its `complete` line says so).
   */
  summary(): void {
    const d = this.#done;
    if (d === null || this.quiet) return;
    const secs = d.elapsed_ms / 1000;
    if (d.downloaded === 0 && d.uploaded === 0) {
      if (this.#hashed > 0) {
        this.say(`Done in ${secs.toFixed(1)} s: ${formatBytes(this.#hashed)} verified on disk, nothing to download`);
      }
      return;
    }
    const from = d.peers.filter((p) => p.downloaded > 0).length;
    this.say(
      `Done in ${secs.toFixed(1)} s: downloaded ${formatBytes(d.downloaded)}` +
        (secs > 0 ? ` (${formatBytes(d.downloaded / secs)}/s)` : "") +
        ` from ${peers(from)}, uploaded ${formatBytes(d.uploaded)}, wasted ${formatBytes(d.wasted)}` +
        foundText(d.sources),
    );
  }

  /** The end of seeding by a signal: how long it seeded, what it uploaded, the ratio. */
  stoppedSeeding(): void {
    const d = this.#done;
    const since = this.#seedingAt ?? 0;
    const until = d?.t ?? since;
    const uploaded = d?.uploaded ?? 0;
    const ratio = this.#size > 0 ? uploaded / this.#size : 0;
    this.say(
      `Stopped seeding after ${formatEta((until - since) / 1000)} ` +
        `(uploaded ${formatBytes(uploaded)}, ratio ${ratioText(ratio)})`,
    );
  }

  #clearBar(): void {
    if (this.#barShown) {
      this.sinks.stderr("\r\x1b[2K");
      this.#barShown = false;
    }
  }

  /** Ends the live line. */
  close(): void {
    this.#clearBar();
  }
}

/** "; peers found: 3 tracker, 12 dht" (sources that gave none left out), or nothing. */
function foundText(sources: Readonly<Record<string, number>>): string {
  const parts = Object.entries(sources).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`);
  return parts.length > 0 ? `; peers found: ${parts.join(", ")}` : "";
}
