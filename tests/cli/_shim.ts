/**
 * A disk that misbehaves on demand, for tests: an `LD_PRELOAD` library built with the system's C compiler (`cc`) that,
 * for files under `SHIM_DIR` only, makes `fdatasync`/`fsync` hang while the file `SHIM_HANG_SYNC` exists, and makes
 * `pwrite` fail with errno `SHIM_ERRNO` (default EIO) once `SHIM_FAIL_AFTER` writes to such files have succeeded, and
 * makes each `pread` of them take `SHIM_SLOW_READ_US` microseconds longer (creating the file `SHIM_READ_MARK`, if set,
 * as each begins). Linux only.
 * @module
 */
import { haveProgram } from "../interop/_peers.ts";

/** Whether {@linkcode buildShim} can work here. */
export const canShim: boolean = Deno.build.os === "linux" && haveProgram("cc");

const SOURCE = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>
#include <fcntl.h>
static int targeted(int fd) {
  const char *dir = getenv("SHIM_DIR");
  char link[64], path[4096];
  if (!dir) return 0;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n < 0) return 0;
  path[n] = 0;
  return strncmp(path, dir, strlen(dir)) == 0;
}
static int flagged(const char *name) {
  const char *f = getenv(name);
  return f && access(f, F_OK) == 0;
}
static void hang_while_flagged(int fd) {
  while (targeted(fd) && flagged("SHIM_HANG_SYNC")) usleep(100000);
}
int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = dlsym(RTLD_NEXT, "fdatasync");
  hang_while_flagged(fd);
  return real(fd);
}
int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = dlsym(RTLD_NEXT, "fsync");
  hang_while_flagged(fd);
  return real(fd);
}
static int writes_left = -2; /* -2: not read yet; -1: never fail */
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  static ssize_t (*real)(int, const void *, size_t, off_t);
  if (!real) real = dlsym(RTLD_NEXT, "pwrite64");
  if (writes_left == -2) {
    const char *after = getenv("SHIM_FAIL_AFTER");
    writes_left = after ? atoi(after) : -1;
  }
  if (writes_left >= 0 && targeted(fd)) {
    if (__atomic_fetch_sub(&writes_left, 1, __ATOMIC_SEQ_CST) <= 0) {
      writes_left = 0;
      const char *e = getenv("SHIM_ERRNO");
      errno = e ? atoi(e) : EIO;
      return -1;
    }
  }
  return real(fd, buf, n, off);
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { return pwrite64(fd, buf, n, off); }
ssize_t pread64(int fd, void *buf, size_t n, off_t off) {
  static ssize_t (*real)(int, void *, size_t, off_t);
  if (!real) real = dlsym(RTLD_NEXT, "pread64");
  const char *slow = getenv("SHIM_SLOW_READ_US");
  if (slow && targeted(fd)) {
    const char *mark = getenv("SHIM_READ_MARK");
    if (mark) close(open(mark, O_WRONLY | O_CREAT, 0644));
    usleep(atoi(slow));
  }
  return real(fd, buf, n, off);
}
ssize_t pread(int fd, void *buf, size_t n, off_t off) { return pread64(fd, buf, n, off); }
`;

/** Builds the library into `dir`; returns its path. */
export async function buildShim(dir: string): Promise<string> {
  await Deno.writeTextFile(`${dir}/shim.c`, SOURCE);
  const out = await new Deno.Command("cc", {
    args: ["-shared", "-fPIC", "-o", `${dir}/shim.so`, `${dir}/shim.c`, "-ldl"],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`cc failed: ${new TextDecoder().decode(out.stderr)}`);
  return `${dir}/shim.so`;
}
