/**
 * The error for a file that could not be created, written or read, apart from the store that throws it: this module
 * imports nothing, so the command line can map the error to its exit code without loading `node:fs`.
 * @module
 */

/**
 * The warnings a program may act on: `no-resume-record` when a session ends without saving its resume record (the disk
 * did not finish writing in time, or the record could not be written), so the next run checks the data on disk instead.
 */
export type WarningCode = "no-resume-record";

/** What went wrong with a file on disk. */
export type StorageErrorCode =
  | "unsafe-path"
  | "create"
  | "write"
  | "read"
  | "no-space"
  | "permission"
  | "not-a-file";

/**
 * A file could not be created, written or read. `path` is the file or directory concerned; the OS error, if any, is
 * the `cause`. OS errors map to codes: ENOSPC/EDQUOT → `no-space`, EACCES/EPERM/EROFS → `permission`, ELOOP (a
 * symlink met by `O_NOFOLLOW`) → `unsafe-path`, EISDIR → `not-a-file`; anything else takes the code of the operation
 * (`create`, `write` or `read`; e.g. ENOTDIR when a path runs under a regular file gives `create`).
 */
export class StorageError extends Error {
  override readonly name = "StorageError";
  /** Makes the error; the message names the path and the detail (the OS error). */
  constructor(readonly code: StorageErrorCode, readonly path: string, readonly detail: string, options?: ErrorOptions) {
    super(`Cannot ${ACTION[code]} ${path}: ${detail}`, options);
  }

  /**
   * Wraps an OS error met while doing `op` on `path`, choosing the code as the class summary says; a StorageError is
   * returned unchanged.
   * @example
   * ```ts
   * import { strictEqual as eq } from "node:assert/strict";
   * const e = Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
   * eq(StorageError.fromOs("write", "/data/a", e).code, "no-space");
   * ```
   */
  static fromOs(op: "create" | "write" | "read", path: string, e: unknown): StorageError {
    if (e instanceof StorageError) return e;
    const c = osCode(e);
    const code: StorageErrorCode = c === "ENOSPC" || c === "EDQUOT"
      ? "no-space"
      : c === "EACCES" || c === "EPERM" || c === "EROFS"
      ? "permission"
      : c === "ELOOP"
      ? "unsafe-path"
      : c === "EISDIR" || (c === "EEXIST" && op === "create")
      ? "not-a-file"
      : op;
    const detail = c === "EEXIST" && op === "create"
      ? "it exists and is not a directory"
      : c === "ENOTDIR"
      ? "a part of the path is a file, not a directory"
      : e instanceof Error
      ? e.message
      : String(e);
    return new StorageError(code, path, `${op} failed: ${detail}`, { cause: e });
  }
}

const ACTION: Record<StorageErrorCode, string> = {
  "unsafe-path": "use",
  "create": "create",
  "write": "write",
  "read": "read",
  "no-space": "write",
  "permission": "access",
  "not-a-file": "use",
};

/** The `code` of a Node-style system error (`ENOENT`, ...), if it has one. */
export function osCode(e: unknown): string | undefined {
  if (typeof e === "object" && e !== null && "code" in e && typeof e.code === "string") return e.code;
  return undefined;
}

/**
 * An error of `openForWrite` or `openForRead` (`file_io.ts`) as a {@linkcode StorageError}: a refusal (an Error with
 * `refusal` set to a code) under its own code, anything else wrapped as met while doing `op`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const refused = Object.assign(new Error("it is a symbolic link"), { refusal: "unsafe-path" });
 * eq(refusalOrWrap("read", "/data/a", refused).message, "Cannot use /data/a: it is a symbolic link");
 * ```
 */
export function refusalOrWrap(op: "create" | "write" | "read", path: string, e: unknown): StorageError {
  const refusal = typeof e === "object" && e !== null && "refusal" in e ? e.refusal as StorageErrorCode : undefined;
  return refusal === undefined
    ? StorageError.fromOs(op, path, e)
    : new StorageError(refusal, path, (e as Error).message);
}
