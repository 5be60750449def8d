/**
 * Parsing of sizes (`10M`, `256K`) and durations (`30m`, `90s`) from flags; pure.
 * @module
 */
import { UsageError } from "./usage_error.ts";

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * Parses a byte count: a number with an optional K, M, G or T suffix (powers of 1024; `KiB`, `MB` and the like are
 * read the same way).
 * @throws {UsageError} when the text is not a size.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(parseSize("256K", "--piece-size"), 262144);
 * eq(parseSize("1.5M", "--max-upload-rate"), 1572864);
 * ```
 */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: "${text}" is not a size (e.g. 500K, 10M, 1G)`);
  const n = Math.round(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()]);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${flag}: "${text}" is too large`);
  return n;
}

const TIME_UNITS: Record<string, number> = { "": 1000, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration into milliseconds: a number with an optional ms, s, m, h or d suffix (bare numbers are seconds);
 * several parts may follow each other (`1h30m`).
 * @throws {UsageError} when the text is not a duration.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(parseDuration("2m", "--stall-timeout"), 120_000);
 * eq(parseDuration("1h30m", "--timeout"), 5_400_000);
 * eq(parseDuration("45", "--timeout"), 45_000);
 * ```
 */
export function parseDuration(text: string, flag: string): number {
  const t = text.trim().toLowerCase();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d)?)+$/.test(t)) {
    throw new UsageError(`${flag}: "${text}" is not a duration (e.g. 90s, 10m, 1h)`);
  }
  let total = 0;
  for (const part of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)?/g)) total += Number(part[1]) * TIME_UNITS[part[2] ?? ""];
  return Math.round(total);
}

/**
 * Formats a byte count for people: `1.5 MiB`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(formatBytes(1536), "1.5 KiB");
 * eq(formatBytes(12), "12 B");
 * eq(formatBytes(367.15), "367 B"); // a rate
 * eq(formatBytes(1023.6), "1.0 KiB"); // not "1024 B"
 * ```
 */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1023.5 && i < units.length - 1) { // what would print as 1024 goes up a unit
    n /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${n >= 100 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

/**
 * Formats seconds as `h:mm:ss` or `m:ss`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(formatEta(75), "1:15");
 * eq(formatEta(3725), "1:02:05");
 * ```
 */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}
