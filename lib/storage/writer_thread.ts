/**
 * The piece writer's thread: its inline module source and its start. It is built from an inline module so the bundle
 * and the compiled binary need no worker file; its descriptor cache, write loop and checked open for writing (the
 * thread creates and checks the files it writes) are the ones of `file_io.ts`, embedded by their source
 * ({@linkcode IO_SOURCE}). This module loads no `node:` module (the thread does, in its own
 * isolate), so the command line can start the thread before it loads anything else: the thread's tens of
 * milliseconds of start-up then overlap the command's own. `PieceWriter` (`piece_writer.ts`) drives it.
 * @module
 */
import { BLOCK_BYTES, MAX_OPEN_FILES } from "../limits.ts";
import { IO_SOURCE } from "./file_io.ts";

const WORKER_SOURCE = `
import * as fs from "node:fs";
import { createHash } from "node:crypto";
${IO_SOURCE}
const BLOCK = ${BLOCK_BYTES};
/** The span whose file is being opened: [path, pieceOffset, length, fileOffset, fileLength, expected, holdsData]. */
let opening = null;
// files are created, sized and checked here, on first write (openForWrite: no link, no other hard link, where
// expected; one that holds verified data is never created or extended again)
// a descriptor closed to make room is flushed first: a resume record may name its data before the next flush, which
// covers only the descriptors still open
const syncThenClose = {
  closeSync(fd) {
    try {
      fs.fdatasyncSync(fd);
    } catch (err) {
      syncFailed ??= err;
      throw err;
    } finally {
      fs.closeSync(fd);
    }
  },
};
/**
 * The first flush that failed. Linux reports a failed writeback once, so a later flush of the same file succeeds
 * although the data is lost: after one failure, every flush of this run reports it.
 */
let syncFailed = null;
const fds = new FdCache(
  syncThenClose,
  ${MAX_OPEN_FILES},
  () => openForWrite(fs, opening[0], opening[4], opening[5], opening[6]),
  (path, _writable, err) => {
    throw Object.assign(err, { closing: path });
  },
);
function blockDigests(view) {
  const n = Math.ceil(view.length / BLOCK);
  const out = new Uint8Array(n * 20);
  for (let b = 0; b < n; b++) {
    out.set(createHash("sha1").update(view.subarray(b * BLOCK, Math.min(view.length, (b + 1) * BLOCK))).digest(), b * 20);
  }
  return out;
}
// the first piece's path, taken once now (while the download has not started): node:fs's open, fstat and positional
// write, and the SHA-1, cost the first piece 10-15 ms more on first use
try {
  const fd = fs.openSync(Deno.build.os === "windows" ? "NUL" : "/dev/null", fs.constants.O_RDWR);
  try {
    fs.lstatSync(Deno.build.os === "windows" ? "NUL" : "/dev/null");
    fs.fstatSync(fd);
    writeFully(fs, fd, new Uint8Array(16), 0, 16, 0);
    if (Deno.build.os === "linux") fs.readlinkSync("/proc/self/fd/" + fd);
  } finally {
    fs.closeSync(fd);
  }
} catch { /* only a warm-up */ }
createHash("sha1").update(new Uint8Array(64)).digest();
self.onmessage = (e) => {
  if (e.data.prepare !== undefined) {
    // fresh memory is mapped in on its first write: done here, while this thread waits for its first piece, the page
    // faults are not taken on the main thread as the first blocks arrive; the buffers go back as they are ready, at
    // least a MiB a message
    const { length, count } = e.data.prepare;
    let batch = [];
    for (let i = 0; i < count; i++) {
      const b = new Uint8Array(length);
      for (let j = 0; j < length; j += 4096) b[j] = 0;
      batch.push(b.buffer);
      if (batch.length * length >= 1048576 || i === count - 1) {
        self.postMessage({ prepared: batch }, batch);
        batch = [];
      }
    }
    return;
  }
  if (e.data.flush !== undefined) {
    // the data written so far, to the device (fdatasync), before a resume record claims it
    let error = null;
    for (const [path, entry] of fds.entries()) {
      if (!entry.writable) continue;
      try {
        fs.fdatasyncSync(entry.fd);
      } catch (err) {
        syncFailed ??= Object.assign(err, { path });
        error ??= { path, code: err && err.code, message: String(err && err.message || err) };
      }
    }
    if (error === null && syncFailed !== null) {
      const err = syncFailed;
      error = { path: err.path ?? err.closing ?? "", code: err.code, message: "an earlier flush failed: " + String(err.message || err) };
    }
    self.postMessage({ flushed: e.data.flush, error });
    return;
  }
  const { id, buffer, byteOffset, length, expected, spans, blocks } = e.data;
  const view = new Uint8Array(buffer, byteOffset, length);
  const digest = createHash("sha1").update(view).digest();
  for (let i = 0; i < 20; i++) {
    if (digest[i] !== expected[i]) {
      const d = blockDigests(view);
      self.postMessage({ id, ok: false, blocks: d, buffer }, [d.buffer, buffer]);
      return;
    }
  }
  for (let k = 0; k < spans.length; k++) {
    const s = spans[k];
    try {
      opening = s;
      const fd = fds.get(s[0], true);
      opening = null;
      if (s[6]) {
        // it holds verified data: removed or cut by someone else since it was opened, that data is gone, and writing on
        // into the descriptor would end in a file of the right size with zeros where the data was
        const st = fs.fstatSync(fd);
        const lost = st.nlink === 0 ? "it is gone (removed while btfetch ran)" : st.size < s[4] ? "it was cut to " + st.size + " bytes while btfetch ran" : null;
        if (lost !== null) throw Object.assign(new Error(lost + ", and its verified data with it"), { refusal: "write" });
      }
      writeFully(fs, fd, view, s[1], s[2], s[3]);
    } catch (err) {
      const error = {
        span: k,
        op: opening === null || (err && err.closing) ? "write" : "create",
        path: err && err.closing,
        code: err && err.code,
        message: String(err && err.message || err),
        refusal: err && err.refusal,
      };
      self.postMessage({ id, ok: true, error, buffer }, [buffer]);
      return;
    } finally {
      opening = null;
    }
  }
  if (blocks) {
    const d = blockDigests(view);
    self.postMessage({ id, ok: true, blocks: d, buffer }, [d.buffer, buffer]);
  } else {
    self.postMessage({ id, ok: true, buffer }, [buffer]);
  }
};
`;

/** A thread started ahead of need by {@linkcode prestartWriterThread}, for the next writer. */
let spare: Worker | null = null;

function startWorker(): Worker {
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
  const w = new Worker(url, { type: "module" });
  URL.revokeObjectURL(url);
  return w;
}

/**
 * Starts the next piece writer's thread now, so it loads its modules (tens of milliseconds) while the caller
 * does other work (reads a torrent, fetches a magnet's metadata) instead of after the first pieces arrive. At most one
 * is kept; {@linkcode discardWriterThread} stops it when no writer will take it.
 */
export function prestartWriterThread(): void {
  spare ??= startWorker();
}

/** Stops a thread started by {@linkcode prestartWriterThread} that no writer took. */
export function discardWriterThread(): void {
  spare?.terminate();
  spare = null;
}

/** The thread started ahead of need, if any, else a new one; the caller owns it. */
export function takeWriterThread(): Worker {
  const w = spare ?? startWorker();
  spare = null;
  return w;
}
