/**
 * The path functions a download needs (`join`, `dirname`, `resolve`), without loading `node:path`: the first `node:`
 * module a process loads costs Deno 8-13 ms, and `get` loads none until it needs one. On Linux and macOS these are
 * POSIX rules with the same results as `node:path`'s `posix` functions (a test compares them on many inputs); on
 * Windows they are `node:path`'s own, loaded on first use.
 * @module
 */
import type * as NodePath from "node:path";
import { nodeBuiltin } from "./node_builtin.ts";

const WINDOWS = Deno.build.os === "windows";

function win32(): typeof NodePath.win32 {
  return nodeBuiltin<typeof NodePath>("node:path").win32;
}

/** Collapses `.`, `..` and repeated separators of a POSIX path; keeps a trailing `/` when `keepTrailing`. */
function normalizePosix(path: string, keepTrailing: boolean): string {
  if (path === "") return ".";
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
      continue;
    }
    out.push(part);
  }
  let s = out.join("/");
  if (s === "" && !absolute) s = ".";
  if (keepTrailing && path.endsWith("/") && s !== "") s += "/";
  return absolute ? "/" + s : s;
}

/**
 * Joins the parts with the platform's separator and normalizes the result, as `node:path`'s `join` does.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * if (Deno.build.os !== "windows") {
 *   eq(join("/out", "t", "../a.bin"), "/out/a.bin");
 *   eq(join("", ""), ".");
 * }
 * ```
 */
export function join(...parts: string[]): string {
  if (WINDOWS) return win32().join(...parts);
  const joined = parts.filter((p) => p !== "").join("/");
  return joined === "" ? "." : normalizePosix(joined, true);
}

/**
 * The directory part of `path`, as `node:path`'s `dirname` says it.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * if (Deno.build.os !== "windows") {
 *   eq(dirname("/out/t/a.bin"), "/out/t");
 *   eq(dirname("a.bin"), ".");
 *   eq(dirname("/"), "/");
 * }
 * ```
 */
export function dirname(path: string): string {
  if (WINDOWS) return win32().dirname(path);
  if (path === "") return ".";
  const rooted = path.startsWith("/");
  let end = -1;
  let inTrailing = true; // separators at the end are not a level
  for (let i = path.length - 1; i >= 1; i--) {
    if (path[i] === "/") {
      if (!inTrailing) {
        end = i;
        break;
      }
    } else inTrailing = false;
  }
  if (end === -1) return rooted ? "/" : ".";
  if (rooted && end === 1) return "//";
  return path.slice(0, end);
}

/**
 * The absolute, normalized path that `parts` name from the current directory, as `node:path`'s `resolve` does.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * if (Deno.build.os !== "windows") {
 *   eq(resolve("/out", "t/", "./a"), "/out/t/a");
 *   eq(resolve("/out", "/abs"), "/abs");
 * }
 * ```
 */
export function resolve(...parts: string[]): string {
  if (WINDOWS) return win32().resolve(...parts);
  let path = "";
  for (let i = parts.length - 1; i >= 0 && !path.startsWith("/"); i--) {
    if (parts[i] === "") continue;
    path = path === "" ? parts[i] : `${parts[i]}/${path}`;
  }
  if (!path.startsWith("/")) path = path === "" ? Deno.cwd() : `${Deno.cwd()}/${path}`;
  return normalizePosix(path, false);
}
