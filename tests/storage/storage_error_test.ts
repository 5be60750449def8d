import { assertEquals } from "../_assert.ts";
import { StorageError as FromDisk } from "../../lib/storage/disk.ts";
import { osCode, StorageError } from "../../lib/storage/storage_error.ts";

const osError = (code: string, message = `${code}: failed`) => Object.assign(new Error(message), { code });

Deno.test("StorageError: disk.ts re-exports the same class, so instanceof holds whichever module a caller imports", () => {
  assertEquals(FromDisk, StorageError);
  assertEquals(StorageError.fromOs("read", "/a", osError("EIO")) instanceof FromDisk, true);
});

Deno.test("StorageError.fromOs() picks the code from the OS error, else the operation's", () => {
  const rows: [op: "create" | "write" | "read", os: string, code: string, detail: string][] = [
    ["write", "ENOSPC", "no-space", "write failed: ENOSPC: failed"],
    ["write", "EDQUOT", "no-space", "write failed: EDQUOT: failed"],
    ["create", "EACCES", "permission", "create failed: EACCES: failed"],
    ["read", "EROFS", "permission", "read failed: EROFS: failed"],
    ["read", "ELOOP", "unsafe-path", "read failed: ELOOP: failed"],
    ["read", "EISDIR", "not-a-file", "read failed: EISDIR: failed"],
    ["create", "EEXIST", "not-a-file", "create failed: it exists and is not a directory"],
    ["create", "ENOTDIR", "create", "create failed: a part of the path is a file, not a directory"],
    ["read", "EIO", "read", "read failed: EIO: failed"],
  ];
  for (const [op, os, code, detail] of rows) {
    const e = StorageError.fromOs(op, "/d/f", osError(os));
    assertEquals([e.code, e.path, e.detail], [code, "/d/f", detail], `${op} ${os}`);
  }
  const same = new StorageError("write", "/x", "y");
  assertEquals(StorageError.fromOs("read", "/z", same), same);
  assertEquals(new StorageError("permission", "/x", "denied").message, "Cannot access /x: denied");
});

Deno.test("osCode() reads a system error's code, and nothing else", () => {
  assertEquals(osCode(osError("ENOENT")), "ENOENT");
  assertEquals(osCode(new Error("x")), undefined);
  assertEquals(osCode({ code: 2 }), undefined);
  assertEquals(osCode(null), undefined);
});
