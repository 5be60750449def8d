/**
 * What the CLI shows while a command runs: `--json` events on stdout, and progress on stderr (a live bar on a TTY,
 * a plain line every few seconds otherwise, nothing with `--quiet`). `NO_COLOR` is honoured.
 * @module
 */
import type { TimedEvent } from "../engine/events.ts";
import { formatBytes, formatEta } from "./units.ts";

/** How often a plain (non-TTY) progress line is written. */
const PLAIN_EVERY_MS = 5_000;

/** Where a {@linkcode Reporter} writes, so tests can capture it. */
export interface ReportSinks {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly stderrIsTty: boolean;
  readonly color: boolean;
}

/** The process's own stdout and stderr. */
export function processSinks(): ReportSinks {
  const enc = new TextEncoder();
  return {
    stdout: (t) => writeAllSync(Deno.stdout, enc.encode(t)),
    stderr: (t) => writeAllSync(Deno.stderr, enc.encode(t)),
    stderrIsTty: Deno.stderr.isTerminal(),
    color: Deno.stderr.isTerminal() && !Deno.env.get("NO_COLOR"),
  };
}

function writeAllSync(w: { writeSync(b: Uint8Array): number }, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += w.writeSync(b.subarray(off));
}

/** Turns session events into output. */
export class Reporter {
  #lastPlain = -Infinity;
  #barShown = false;
  #name = "";

  /** Makes a reporter; `json` prints events, `quiet` silences stderr. */
  constructor(readonly sinks: ReportSinks, readonly json: boolean, readonly quiet: boolean) {}

  /** Prints one JSON event line (with `--json`). */
  json_(e: Record<string, unknown>): void {
    if (this.json) this.sinks.stdout(JSON.stringify(e) + "\n");
  }

  /** A line for people on stderr (clearing the live bar first). */
  say(text: string): void {
    if (this.quiet) return;
    this.#clearBar();
    this.sinks.stderr(text + "\n");
  }

  /** Handles one session event. */
  event(e: TimedEvent): void {
    this.json_(e as unknown as Record<string, unknown>);
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
        this.#progressLine(`checking ${e.checked}/${e.total} pieces`, e.t, e.total > 0 ? e.checked / e.total : 1);
        break;
      case "progress": {
        const pct = e.total > 0 ? e.verified / e.total : 1;
        const text = `${(pct * 100).toFixed(1)}% ${formatBytes(e.verified)}/${formatBytes(e.total)} ` +
          `down ${formatBytes(e.download_rate)}/s up ${formatBytes(e.upload_rate)}/s ${e.peers} peers` +
          (e.eta_s === null ? "" : ` ETA ${formatEta(e.eta_s)}`);
        this.#progressLine(text, e.t, pct);
        break;
      }
      case "complete":
        this.say(`${this.#name}: complete, ${formatBytes(e.verified)} verified`);
        break;
      case "seeding":
        this.say(`Seeding until ${e.until}`);
        break;
      case "done": {
        const secs = e.elapsed_ms / 1000;
        this.say(
          `Done in ${secs.toFixed(1)} s: downloaded ${formatBytes(e.downloaded)}` +
            (secs > 0 ? ` (${formatBytes(e.downloaded / secs)}/s)` : "") +
            `, uploaded ${formatBytes(e.uploaded)}, wasted ${formatBytes(e.wasted)}, from ${
              e.peers.filter((p) => p.downloaded > 0).length
            } peers` + foundText(e.sources),
        );
        break;
      }
      default:
        break;
    }
  }

  #progressLine(text: string, t: number, fraction: number): void {
    if (this.sinks.stderrIsTty) {
      const width = 24;
      const fill = Math.round(Math.min(1, fraction) * width);
      const bar = "#".repeat(fill) + "-".repeat(width - fill);
      const colored = this.sinks.color ? `\x1b[32m${bar}\x1b[0m` : bar;
      this.sinks.stderr(`\r\x1b[2K[${colored}] ${text}`);
      this.#barShown = true;
    } else if (t - this.#lastPlain >= PLAIN_EVERY_MS) {
      this.#lastPlain = t;
      this.sinks.stderr(text + "\n");
    }
  }

  #clearBar(): void {
    if (this.#barShown) {
      this.sinks.stderr("\r\x1b[2K");
      this.#barShown = false;
    }
  }

  /** Ends the live bar line. */
  close(): void {
    this.#clearBar();
  }
}

/** "; peers found: 3 tracker, 12 dht" (sources that gave none left out), or nothing. */
function foundText(sources: Readonly<Record<string, number>>): string {
  const parts = Object.entries(sources).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`);
  return parts.length > 0 ? `; peers found: ${parts.join(", ")}` : "";
}
