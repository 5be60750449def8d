/**
 * OS errors in plain words: `ENOENT` → "no such file or folder", and the runtime's own phrasing taken out of messages.
 * @module
 */

/** OS error codes in plain words. */
const OS_WORDS: Readonly<Record<string, string>> = {
  ENOENT: "no such file or folder",
  ENOTDIR: "a part of the path is a file, not a folder",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EROFS: "the file system is read-only",
  ENOSPC: "the disk is full",
  EDQUOT: "the disk quota is used up",
  EISDIR: "it is a folder",
  ELOOP: "it is a symbolic link",
  EEXIST: "it already exists",
  EMFILE: "too many open files",
  ENFILE: "too many open files",
  ENAMETOOLONG: "the name is too long",
  EIO: "an input/output error (a failing disk?)",
  EBUSY: "it is busy",
  ETXTBSY: "it is busy",
};

/** How deep {@linkcode osCode} follows `cause`. */
const MAX_CAUSE_DEPTH = 5;

/** The OS error code (`ENOENT`…) of `e` or of the first of its causes that has one. */
export function osCode(e: unknown): string | undefined {
  for (let i = 0; i < MAX_CAUSE_DEPTH && typeof e === "object" && e !== null; i++) {
    if ("code" in e && typeof e.code === "string" && /^E[A-Z]+$/.test(e.code)) return e.code;
    e = "cause" in e ? e.cause : undefined;
  }
  return undefined;
}

/**
 * Plain words for an OS error (`ENOENT` → "no such file or folder"), or undefined when it has no known code.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(osWords(Object.assign(new Error("EACCES: permission denied, open '/x'"), { code: "EACCES" })), "permission denied");
 * ```
 */
export function osWords(e: unknown): string | undefined {
  const c = osCode(e);
  return c === undefined ? undefined : OS_WORDS[c];
}

/**
 * Removes the runtime's own phrasing from a message: Node's `ENOENT: no such file or directory, stat '/x'` becomes
 * `no such file or directory`, Deno's `No such file or directory (os error 2): stat '/x'` becomes
 * `no such file or directory`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(plainOsText("Cannot read x: ENOENT: no such file or directory, stat 'x'"), "Cannot read x: no such file or directory");
 * eq(plainOsText("Cannot read x: No such file or directory (os error 2): stat 'x'"), "Cannot read x: no such file or directory");
 * ```
 */
export function plainOsText(text: string): string {
  return text
    .replace(/\bE[A-Z]{2,}: ([^,;]+?)(?:, \w+ '[^']*'(?: -> '[^']*')?)?(?=$|;)/g, "$1")
    .replace(
      /\b([A-Z][a-z][^():;]*?) \(os error \d+\)(?:: \w+ '[^']*'(?: -> '[^']*')?)?/g,
      (_, words: string) => words[0].toLowerCase() + words.slice(1),
    );
}
