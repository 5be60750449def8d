/**
 * `--stdout`: one file of the torrent written in order to standard output as its pieces verify, so
 * `btfetch magnet:… --select 2 --stdout | tar x` starts working on the first bytes while the rest is still arriving.
 *
 * The file is also kept under `-o` (the data on disk is the buffer: memory stays bounded however slow the reader is,
 * and a second run resumes). Bytes are read back from disk after their piece verified, a chunk at a time, and each
 * write to the pipe is awaited, so a slow reader slows only this loop, never the download. A reader that goes away
 * (`| head -c 100`: the write throws {@linkcode ReaderGone}) ends the stream with `closed`; the caller stops the
 * download and exits 0. Any other failure, reading the file back or writing (a full disk behind `> file`), rejects
 * `done` with a {@linkcode StorageError}: the output is incomplete, and that is an error.
 * @module
 */
import type * as NodeFs from "node:fs";
import { nodeBuiltin } from "../node_builtin.ts";
import type { Metainfo } from "../metainfo.ts";
import { join } from "../path.ts";
import { openForRead } from "../storage/file_io.ts";
import { refusalOrWrap, StorageError } from "../storage/storage_error.ts";

/** `node:fs`, loaded when a stream first opens its file. */
const fs = () => nodeBuiltin<typeof NodeFs>("node:fs");

/** What a {@linkcode PipeWrite} throws when the reader has gone away (a broken pipe): not an error of the stream. */
export class ReaderGone extends Error {
  override readonly name = "ReaderGone";
  constructor(options?: ErrorOptions) {
    super("the reader of standard output went away", options);
  }
}

/** Bytes read from disk and written to the pipe at once. */
const CHUNK_BYTES = 1024 * 1024;

/** What {@linkcode FileStream.done} resolves with: everything written, or the reader went away. */
export type StreamEnd = "written" | "closed";

/** Writes a byte run to the pipe; rejects with {@linkcode ReaderGone} when the reader is gone, else with the error. */
export type PipeWrite = (bytes: Uint8Array) => Promise<void>;

/** Streams one file of a torrent, in order, as its pieces verify. */
export class FileStream {
  readonly #meta: Metainfo;
  readonly #path: string;
  readonly #outDir: string;
  readonly #parts: readonly string[];
  readonly #start: number;
  readonly #end: number;
  readonly #write: PipeWrite;
  /** Payload offset of the next byte to write. */
  #pos: number;
  #have: { has(i: number): boolean } | null = null;
  #running = false;
  #ended = false;
  #written = false;
  /** The file, open from the first write to the end of the stream. */
  #fd: number | null = null;
  #resolve!: (e: StreamEnd) => void;
  #reject!: (e: unknown) => void;
  /** Settles when the whole file is written, the reader went away, or reading the disk failed. */
  readonly done: Promise<StreamEnd>;

  /** Streams file `fileIndex` of `meta`, kept at `outDir`, through `write`. */
  constructor(meta: Metainfo, outDir: string, fileIndex: number, write: PipeWrite) {
    const f = meta.files[fileIndex];
    this.#meta = meta;
    this.#path = [outDir, ...f.path].join("/");
    this.#outDir = outDir;
    this.#parts = f.path;
    this.#start = f.offset;
    this.#end = f.offset + f.length;
    this.#pos = f.offset;
    this.#write = write;
    this.done = new Promise<StreamEnd>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    if (f.length === 0) this.#finish("written");
  }

  /** Whether the whole file has been written. */
  get written(): boolean {
    return this.#written;
  }

  /** The verified pieces changed (or are known for the first time): write what is now contiguous. */
  update(have: { has(i: number): boolean }): void {
    this.#have = have;
    if (!this.#running && !this.#ended) void this.#pump();
  }

  /** Bytes from the file's start that are verified. */
  #verifiedEnd(): number {
    const have = this.#have;
    if (!have) return this.#pos;
    const pl = this.#meta.pieceLength;
    let end = this.#pos;
    while (end < this.#end) {
      const piece = Math.floor(end / pl);
      if (!have.has(piece)) break;
      end = Math.min(this.#end, (piece + 1) * pl);
    }
    return end;
  }

  async #pump(): Promise<void> {
    this.#running = true;
    try {
      for (;;) {
        const until = this.#verifiedEnd();
        if (until <= this.#pos) break;
        const fd = this.#fd ??= this.#open();
        while (this.#pos < until) {
          const n = Math.min(CHUNK_BYTES, until - this.#pos);
          const buf = new Uint8Array(n);
          let got = 0;
          while (got < n) {
            let r: number;
            try {
              r = fs().readSync(fd, buf, got, n - got, this.#pos - this.#start + got);
            } catch (e) {
              throw StorageError.fromOs("read", this.#path, e);
            }
            if (r <= 0) throw new StorageError("read", this.#path, "the file is shorter than its verified pieces");
            got += r;
          }
          try {
            await this.#write(buf);
          } catch (e) {
            if (!(e instanceof ReaderGone)) throw e;
            this.#finish("closed");
            return;
          }
          this.#pos += n;
        }
      }
      if (this.#pos >= this.#end) this.#finish("written");
    } catch (e) {
      this.#ended = true;
      this.#closeFile();
      this.#reject(e instanceof StorageError ? e : StorageError.fromOs("write", "standard output", e));
    } finally {
      this.#running = false;
    }
    // pieces may have verified while the last write waited
    if (!this.#ended && this.#verifiedEnd() > this.#pos) void this.#pump();
  }

  /**
   * Opens the file once, for the whole stream: a file swapped afterwards (for a link, or another file) does not change
   * what is read, which is the file the download writes into. Never through a link, never a FIFO or a directory, and
   * (where Linux says where a descriptor is) never a file outside the output folder reached through a directory
   * swapped for a link.
   */
  #open(): number {
    let real: string | null = null;
    try {
      real = Deno.realPathSync(this.#outDir);
    } catch { /* unknown: the check of where the descriptor is, is skipped */ }
    try {
      return openForRead(fs(), this.#path, real === null ? null : join(real, ...this.#parts));
    } catch (e) {
      throw refusalOrWrap("read", this.#path, e);
    }
  }

  #closeFile(): void {
    if (this.#fd === null) return;
    try {
      fs().closeSync(this.#fd);
    } catch { /* closed already */ }
    this.#fd = null;
  }

  #finish(e: StreamEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#written = e === "written";
    this.#closeFile();
    this.#resolve(e);
  }
}
