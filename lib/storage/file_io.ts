/**
 * The file-descriptor cache, the full `pread`/`pwrite` loops and the checked opens, defined once and used by the disk
 * module, `--stdout`, the piece writer thread and `create`'s hashing threads.
 *
 * Those threads are built from inline module sources (so the bundle stays one file), which embed these definitions
 * by their `toString()`: {@linkcode IO_SOURCE} is that text. So each definition here is self-contained: it uses only
 * its parameters and `this`, never an import or another top-level name of this module.
 * @module
 */
import type * as fs from "node:fs";

/** The part of `node:fs` these functions use: the module itself, or a stand-in in tests. */
export type FsLike = Pick<typeof fs, "closeSync" | "readSync" | "writeSync">;

/** The part of `node:fs` {@linkcode openForWrite} and {@linkcode openForRead} use. */
export type FsOpenLike = Pick<
  typeof fs,
  "constants" | "lstatSync" | "openSync" | "fstatSync" | "closeSync" | "ftruncateSync" | "readlinkSync"
>;

/** What {@linkcode openForWrite} or {@linkcode openForRead} refuse a file for, named as the store's error codes name it. */
export type Refusal = "unsafe-path" | "not-a-file" | "create" | "write";

/** One cached descriptor. */
export interface FdEntry {
  readonly fd: number;
  readonly writable: boolean;
}

/**
 * A small LRU of open descriptors keyed by `K` (a file index, a path). A miss calls `open(key, write)`; a descriptor
 * opened for reading is closed and reopened when a write needs the file. Past `max` entries the least recently used is
 * closed. A failure to close goes to `onCloseError` (by default it is thrown, after the entry is dropped).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import * as fs from "node:fs";
 * const opened: string[] = [];
 * const cache = new FdCache<string>(fs, 1, (path, write) => {
 *   opened.push(`${path}:${write}`);
 *   return fs.openSync("/dev/null", write ? "r+" : "r");
 * });
 * const fd = cache.get("a", false);
 * eq(cache.get("a", false), fd); // a hit
 * cache.get("a", true); // upgraded: reopened for writing
 * cache.get("b", false); // evicts "a"
 * eq(opened.join(" "), "a:false a:true b:false");
 * eq(cache.size, 1);
 * cache.closeAll();
 * ```
 */
export class FdCache<K> {
  readonly #fs: Pick<FsLike, "closeSync">;
  readonly #max: number;
  readonly #open: (key: K, write: boolean) => number | null;
  readonly #onCloseError: (key: K, writable: boolean, e: unknown) => void;
  /** Map order is least recently used first. */
  readonly #map = new Map<K, FdEntry>();

  /** Makes an empty cache; `open` returns a descriptor, or null when the file is absent (nothing is cached then). */
  constructor(
    fsm: Pick<FsLike, "closeSync">,
    max: number,
    open: (key: K, write: boolean) => number | null,
    onCloseError?: (key: K, writable: boolean, e: unknown) => void,
  ) {
    this.#fs = fsm;
    this.#max = Math.max(1, max);
    this.#open = open;
    this.#onCloseError = onCloseError ?? ((_key, _writable, e) => {
      throw e;
    });
  }

  /** How many descriptors are open. */
  get size(): number {
    return this.#map.size;
  }

  /**
   * A descriptor for `key` (writable when `write`), cached or freshly opened; null when `open` says the file is absent.
   * @throws whatever `open` throws, and close errors as `onCloseError` decides.
   */
  get(key: K, write: boolean): number | null {
    const hit = this.#map.get(key);
    if (hit !== undefined) {
      this.#map.delete(key);
      if (hit.writable || !write) {
        this.#map.set(key, hit);
        return hit.fd;
      }
      this.#close(key, hit);
    }
    const fd = this.#open(key, write);
    if (fd === null) return null;
    this.#map.set(key, { fd, writable: write });
    if (this.#map.size > this.#max) {
      for (const [k, e] of this.#map) {
        this.#map.delete(k);
        this.#close(k, e);
        break;
      }
    }
    return fd;
  }

  /** The open descriptors, least recently used first. */
  entries(): IterableIterator<[K, FdEntry]> {
    return this.#map.entries();
  }

  /** Closes every descriptor (each failure goes to `onCloseError`, after all are closed or tried). */
  closeAll(): void {
    const all = [...this.#map];
    this.#map.clear();
    let failed: { key: K; writable: boolean; e: unknown } | null = null;
    for (const [k, e] of all) {
      try {
        this.#fs.closeSync(e.fd);
      } catch (err) {
        failed ??= { key: k, writable: e.writable, e: err };
      }
    }
    if (failed !== null) this.#onCloseError(failed.key, failed.writable, failed.e);
  }

  #close(key: K, e: FdEntry): void {
    try {
      this.#fs.closeSync(e.fd);
    } catch (err) {
      this.#onCloseError(key, e.writable, err);
    }
  }
}

/**
 * Writes `length` bytes of `buf` from `offset` to `fd` at `position`, looping over short writes.
 * @throws the OS error, or an Error when the OS writes nothing.
 * @example
 * ```ts
 * import * as fs from "node:fs";
 * const fd = fs.openSync("/dev/null", "w");
 * writeFully(fs, fd, new Uint8Array(8), 2, 6, 0);
 * fs.closeSync(fd);
 * ```
 */
export function writeFully(
  fsm: Pick<FsLike, "writeSync">,
  fd: number,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
): void {
  let done = 0;
  while (done < length) {
    const n = fsm.writeSync(fd, buf, offset + done, length - done, position + done);
    if (n <= 0) throw new Error(`wrote ${n} bytes`);
    done += n;
  }
}

/**
 * Reads up to `length` bytes at `position` of `fd` into `buf` at `offset`, looping over short reads until the file
 * ends.
 * @returns how many bytes were read: less than `length` only when the file ends first.
 * @throws the OS error.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import * as fs from "node:fs";
 * const fd = fs.openSync("/dev/null", "r");
 * eq(readFully(fs, fd, new Uint8Array(4), 0, 4, 0), 0);
 * fs.closeSync(fd);
 * ```
 */
export function readFully(
  fsm: Pick<FsLike, "readSync">,
  fd: number,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
): number {
  let done = 0;
  while (done < length) {
    const n = fsm.readSync(fd, buf, offset + done, length - done, position + done);
    if (n <= 0) break;
    done += n;
  }
  return done;
}

/**
 * Opens `path` for writing as the store's policy says (`disk.ts`): creates it when missing and sizes it to `length`
 * when it has another size, and refuses a symbolic link (also through `O_NOFOLLOW`, so one swapped in after the
 * check is refused too), anything but a regular file (`O_NONBLOCK`: a FIFO never blocks the open), a file with other
 * hard links, and, where Linux says where the descriptor really is (`/proc/self/fd`), a file that is not at
 * `expected` (a directory on its path swapped for a symlink after it was checked). Checks are made on the open
 * descriptor, so nothing can change between check and use. There, a file that may be created is created through its
 * folder's checked descriptor ({@linkcode openDirChecked}), so such a swap cannot have it made elsewhere, even empty.
 * `expected` null skips that last check. With `holdsData` (verified pieces were written to it, or found in it), the
 * file is never created and never extended: missing or shorter than `length`, it was removed or cut while btfetch ran,
 * and making it whole again with zeros would pass them off as the verified data (`write` refusal).
 * @returns the descriptor (the caller closes it).
 * @throws an Error whose `refusal` ({@linkcode Refusal}) says why the file was refused; the OS error (with its
 * `code`) when the OS failed.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import * as fs from "node:fs";
 * const dir = Deno.makeTempDirSync();
 * const fd = openForWrite(fs, `${dir}/a`, 5, null);
 * eq(fs.fstatSync(fd).size, 5); // created, sparse, at its length
 * fs.closeSync(fd);
 * fs.symlinkSync(`${dir}/a`, `${dir}/link`);
 * let refusal;
 * try {
 *   openForWrite(fs, `${dir}/link`, 5, null);
 * } catch (e) {
 *   refusal = (e as { refusal?: string }).refusal;
 * }
 * eq(refusal, "unsafe-path");
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function openForWrite(
  fsm: FsOpenLike,
  path: string,
  length: number,
  expected: string | null,
  holdsData = false,
): number {
  const refuse = (refusal: Refusal, message: string) => Object.assign(new Error(message), { refusal });
  let linked = false;
  try {
    linked = fsm.lstatSync(path).isSymbolicLink();
  } catch (e) {
    // missing: created below; a part of the path that is a file: the open says so
    const code = (e as { code?: string }).code;
    if (code !== "ENOENT" && code !== "ENOTDIR") throw e;
  }
  if (linked) throw refuse("unsafe-path", "it is a symbolic link");
  const c = fsm.constants;
  // where the file may be made (O_CREAT), it is made in its folder as opened and checked here (Linux)
  let at = path;
  let dirFd: number | null = null;
  const slash = path.lastIndexOf("/");
  if (!holdsData && expected !== null && slash > 0 && Deno.build.os === "linux") {
    const dir = openDirChecked(fsm, path.slice(0, slash), expected.slice(0, expected.lastIndexOf("/")));
    dirFd = dir.fd;
    if (dir.via !== null) at = `${dir.via}/${path.slice(slash + 1)}`;
  }
  let fd: number;
  try {
    fd = fsm.openSync(at, c.O_RDWR | (holdsData ? 0 : c.O_CREAT) | (c.O_NOFOLLOW ?? 0) | (c.O_NONBLOCK ?? 0), 0o666);
  } catch (e) {
    // the OS names the path it was given: name the file's own
    if (at !== path && e instanceof Error) e.message = e.message.split(at).join(path);
    if (!holdsData || (e as { code?: string }).code !== "ENOENT") throw e;
    throw refuse("write", "it is gone (removed while btfetch ran), and its verified data with it");
  } finally {
    if (dirFd !== null) fsm.closeSync(dirFd);
  }
  try {
    const st = fsm.fstatSync(fd);
    if (!st.isFile()) throw refuse("not-a-file", "it is not a regular file");
    if (st.nlink > 1) {
      const others = st.nlink - 1;
      throw refuse(
        "unsafe-path",
        `it has ${others} other hard link${others > 1 ? "s" : ""}, and btfetch never writes through one`,
      );
    }
    if (st.nlink === 0) throw refuse("create", "it was removed while being opened");
    refuseIfElsewhere(fsm, fd, expected);
    if (holdsData && st.size < length) {
      throw refuse("write", `it was cut to ${st.size} bytes while btfetch ran, and its verified data with it`);
    }
    if (st.size !== length) fsm.ftruncateSync(fd, length);
  } catch (e) {
    fsm.closeSync(fd);
    throw e;
  }
  return fd;
}

/**
 * Opens folder `dir` to create entries in it as Linux says it really is (Linux only): with `O_PATH` (no read
 * permission needed; links on its way are followed, since the user's output folder may be one), then checks that
 * `/proc/self/fd/N` shows it at `expected`. Creating `via + "/" + name` then goes through the descriptor, not the path,
 * so a folder on the way swapped for a link after it was checked cannot have the entry made elsewhere: what `openat`
 * would do, which neither Deno nor Node offers.
 * @returns the descriptor (the caller closes it) and `via` (`/proc/self/fd/N`), or a null `via` when `/proc` is not
 * mounted (the caller then goes by path, and checks after).
 * @throws an Error with `refusal` `unsafe-path` when the folder is elsewhere (the descriptor closed); the OS error when
 * it cannot be opened.
 */
export function openDirChecked(
  fsm: Pick<FsOpenLike, "constants" | "openSync" | "readlinkSync" | "closeSync">,
  dir: string,
  expected: string,
): { fd: number; via: string | null } {
  const O_PATH = 0o10000000;
  const fd = fsm.openSync(dir, O_PATH | fsm.constants.O_DIRECTORY);
  let at: string | null = null;
  try {
    at = fsm.readlinkSync(`/proc/self/fd/${fd}`);
  } catch { /* no /proc mounted */ }
  if (at !== null && at !== expected) {
    fsm.closeSync(fd);
    throw Object.assign(new Error(`its folder resolves to ${at}: a directory on its path is a link`), {
      refusal: "unsafe-path" as Refusal,
    });
  }
  return { fd, via: at === null ? null : `/proc/self/fd/${fd}` };
}

/**
 * Opens `path` read-only as the store's policy says: refuses a symbolic link (also through `O_NOFOLLOW`), anything but
 * a regular file (`O_NONBLOCK`: a FIFO never blocks the open) and, where Linux says where the descriptor really is, a
 * file that is not at `expected` (null skips that check), so data served or streamed never comes from outside the
 * output folder through a directory swapped for a link. A file with other hard links is read: bytes read are trusted
 * only once their piece hash matches.
 * @returns the descriptor (the caller closes it).
 * @throws an Error whose `refusal` ({@linkcode Refusal}) says why the file was refused; the OS error (with its
 * `code`: `ENOENT` for a missing file) when the OS failed.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import * as fs from "node:fs";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/a`, "data");
 * const fd = openForRead(fs, `${dir}/a`, null);
 * eq(fs.fstatSync(fd).size, 4);
 * fs.closeSync(fd);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function openForRead(fsm: FsOpenLike, path: string, expected: string | null): number {
  if (fsm.lstatSync(path).isSymbolicLink()) {
    throw Object.assign(new Error("it is a symbolic link"), { refusal: "unsafe-path" as Refusal });
  }
  const c = fsm.constants;
  const fd = fsm.openSync(path, c.O_RDONLY | (c.O_NOFOLLOW ?? 0) | (c.O_NONBLOCK ?? 0));
  try {
    if (!fsm.fstatSync(fd).isFile()) {
      throw Object.assign(new Error("it is not a regular file"), { refusal: "not-a-file" as Refusal });
    }
    refuseIfElsewhere(fsm, fd, expected);
  } catch (e) {
    fsm.closeSync(fd);
    throw e;
  }
  return fd;
}

/**
 * Refuses (`unsafe-path`) descriptor `fd` when Linux says (`/proc/self/fd`) it is not at `expected`: a directory on its
 * path was swapped for a symlink after it was checked. Skipped when `expected` is null or there is no `/proc`.
 */
export function refuseIfElsewhere(fsm: Pick<FsOpenLike, "readlinkSync">, fd: number, expected: string | null): void {
  if (expected === null) return;
  let actual: string | null = null;
  try {
    actual = fsm.readlinkSync(`/proc/self/fd/${fd}`);
  } catch { /* no /proc here: the check is skipped */ }
  if (actual !== null && actual !== expected) {
    throw Object.assign(new Error(`it resolves to ${actual}: a directory on its path is a link`), {
      refusal: "unsafe-path" as Refusal,
    });
  }
}

/**
 * JavaScript that defines `FdCache`, `writeFully`, `readFully`, `openForWrite` and what it calls in a worker's inline
 * module source: the very definitions above, by their `toString()`, so they exist once.
 */
export const IO_SOURCE: string = `
const FdCache = ${FdCache.toString()};
const writeFully = ${writeFully.toString()};
const readFully = ${readFully.toString()};
const refuseIfElsewhere = ${refuseIfElsewhere.toString()};
const openDirChecked = ${openDirChecked.toString()};
const openForWrite = ${openForWrite.toString()};
`;
