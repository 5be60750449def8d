import { assertEquals, assertThrows } from "../_assert.ts";
import { FdCache, type FsLike, IO_SOURCE, readFully, writeFully } from "../../lib/storage/file_io.ts";

/** A stand-in file system: one growable file per fd, short reads and writes of at most `step` bytes. */
function fakeFs(step: number, closeFails = new Set<number>()) {
  const files = new Map<number, Uint8Array>();
  const closed: number[] = [];
  const fsm: FsLike = {
    closeSync(fd: number) {
      closed.push(fd);
      if (closeFails.has(fd)) throw new Error(`close ${fd} failed`);
    },
    readSync(fd: number, buf: ArrayBufferView, offset?: unknown, length?: unknown, position?: unknown) {
      const f = files.get(fd) ?? new Uint8Array();
      const pos = Number(position);
      const n = Math.max(0, Math.min(step, Number(length), f.length - pos));
      (buf as Uint8Array).set(f.subarray(pos, pos + n), Number(offset));
      return n;
    },
    writeSync(fd: number, buf: ArrayBufferView, offset?: unknown, length?: unknown, position?: unknown) {
      const pos = Number(position);
      const n = Math.min(step, Number(length));
      let f = files.get(fd) ?? new Uint8Array();
      if (f.length < pos + n) {
        const g = new Uint8Array(pos + n);
        g.set(f);
        f = g;
      }
      f.set((buf as Uint8Array).subarray(Number(offset), Number(offset) + n), pos);
      files.set(fd, f);
      return n;
    },
  } as unknown as FsLike;
  return { fsm, files, closed };
}

Deno.test("FdCache keeps the most recently used descriptors, reopens for writing, and closes the rest", () => {
  const { fsm, closed } = fakeFs(1);
  let next = 10;
  const opened: string[] = [];
  const cache = new FdCache<string>(fsm, 2, (key, write) => {
    if (key === "missing") return null;
    opened.push(`${key}${write ? "+w" : ""}`);
    return next++;
  });
  assertEquals(cache.get("a", false), 10);
  assertEquals(cache.get("b", false), 11);
  assertEquals(cache.get("a", false), 10, "a hit");
  assertEquals(cache.get("missing", false), null);
  assertEquals(cache.get("c", true), 12); // evicts b, the least recently used
  assertEquals(closed, [11]);
  assertEquals(cache.get("a", true), 13, "a read-only descriptor is reopened for writing");
  assertEquals(closed, [11, 10]);
  assertEquals(cache.get("a", false), 13, "a writable one serves reads");
  assertEquals([...cache.entries()].map(([k, e]) => [k, e.writable]), [["c", true], ["a", true]]);
  assertEquals(opened, ["a", "b", "c+w", "a+w"]);
  cache.closeAll();
  assertEquals([cache.size, closed], [0, [11, 10, 12, 13]]);
});

Deno.test("FdCache reports a failed close after closing everything else", () => {
  const { fsm, closed } = fakeFs(1, new Set([1]));
  let next = 1;
  const failures: string[] = [];
  const cache = new FdCache<string>(fsm, 8, () => next++, (key, writable) => failures.push(`${key}:${writable}`));
  cache.get("a", true);
  cache.get("b", false);
  cache.closeAll();
  assertEquals([closed, failures], [[1, 2], ["a:true"]]);
  const throwing = new FdCache<string>(fsm, 8, () => 1);
  throwing.get("x", false);
  assertThrows(() => throwing.closeAll(), Error);
});

Deno.test("writeFully() and readFully() loop over short writes and reads; readFully() stops at the end", () => {
  const { fsm, files } = fakeFs(3);
  const data = Uint8Array.from({ length: 20 }, (_, i) => i + 1);
  writeFully(fsm, 5, data, 4, 10, 2);
  assertEquals(files.get(5), Uint8Array.from([0, 0, ...data.subarray(4, 14)]));
  const into = new Uint8Array(16);
  assertEquals(readFully(fsm, 5, into, 1, 8, 2), 8);
  assertEquals(into.subarray(1, 9), data.subarray(4, 12));
  assertEquals(readFully(fsm, 5, into, 0, 16, 6), 6, "the file ends after 6 more bytes");
  const stuck = { writeSync: () => 0 } as unknown as FsLike;
  assertThrows(() => writeFully(stuck, 1, data, 0, 1, 0), Error);
});

Deno.test("IO_SOURCE defines the same FdCache, writeFully and readFully on its own (as a worker runs it)", () => {
  const made = new Function(`${IO_SOURCE}; return { FdCache, writeFully, readFully };`)();
  assertEquals(made.writeFully.toString(), writeFully.toString());
  assertEquals(made.readFully.toString(), readFully.toString());
  assertEquals(made.FdCache.toString(), FdCache.toString());
  const { fsm, files } = fakeFs(2);
  made.writeFully(fsm, 1, Uint8Array.from([1, 2, 3, 4, 5]), 0, 5, 0);
  assertEquals(files.get(1), Uint8Array.from([1, 2, 3, 4, 5]));
  const cache = new made.FdCache(fsm, 1, () => 7);
  assertEquals(cache.get("k", false), 7);
});
