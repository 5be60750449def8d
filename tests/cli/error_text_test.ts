import { assertEquals } from "../_assert.ts";
import { errorText } from "../../lib/cli/error_text.ts";
import { StorageError } from "../../lib/storage/storage_error.ts";

function osError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

Deno.test("errorText: a disk error in plain words, with what to do for each cause", () => {
  const path = "/data/out/a.bin";
  const rows: [string, string, string][] = [
    [
      "EIO",
      "Input/output error (os error 5)",
      `Cannot write ${path}: an input/output error (a failing disk?); check the disk, then run the same command again`,
    ],
    [
      "EROFS",
      "Read-only file system (os error 30)",
      `Cannot access ${path}: the file system is read-only; make it writable (or choose another place), then run the ` +
      "same command again",
    ],
    [
      "EACCES",
      "Permission denied (os error 13)",
      `Cannot access ${path}: permission denied; check its permissions or choose another place`,
    ],
    [
      "ENOSPC",
      "No space left on device (os error 28)",
      `Cannot write ${path}: the disk is full; free some space, then run the same command again`,
    ],
  ];
  for (const [code, raw, line] of rows) {
    assertEquals(errorText(StorageError.fromOs("write", path, osError(code, raw))), line, code);
  }
  // an OS error without a hint of its own keeps the plain message alone
  assertEquals(
    errorText(StorageError.fromOs("write", path, osError("EFBIG", "File too large (os error 27)"))),
    `Cannot write ${path}: file too large`,
  );
});
