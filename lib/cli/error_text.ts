/**
 * The one line btfetch prints for what ended a command: plain words (no raw runtime text such as
 * `No such file or directory (os error 2): stat 'x'`), and what to do about it.
 * @module
 */
import { BencodeError } from "../bencode.ts";
import { FetchError } from "../engine/errors.ts";
import { osCode, StorageError } from "../storage/storage_error.ts";
import { osWords, plainOsText } from "./os_words.ts";
import { SourceError } from "./source.ts";

/** The message of `e` in plain words: a raw OS message at its end is replaced by {@linkcode osWords}. */
function plainMessage(e: unknown): string {
  if (!(e instanceof Error)) return String(e).split("\n")[0];
  let msg = e.message.split("\n")[0];
  const raw = e.cause instanceof Error ? e.cause.message.split("\n")[0] : undefined;
  const words = osWords(e.cause);
  if (raw && msg.endsWith(raw)) {
    // the OS's own text when btfetch has no words for its code, made plain (its "(os error N)" dropped)
    msg = msg.slice(0, msg.length - raw.length).replace(/\b(?:create|write|read) failed: $/, "") +
      (words ?? plainOsText(raw));
  }
  return plainOsText(msg);
}

/** What to do, for the errors where btfetch can say. */
function hint(e: unknown): string | undefined {
  if (e instanceof StorageError) {
    switch (e.code) {
      case "permission":
        // a file system gone read-only under a download is most often ext4's errors=remount-ro: a failing disk
        return osCode(e.cause) === "EROFS"
          ? "make it writable (or choose another place), then run the same command again"
          : "check its permissions or choose another place";
      case "no-space":
        return "free some space, then run the same command again";
      case "unsafe-path":
        return "btfetch does not write through links: remove the link or choose another place";
      case "not-a-file":
        return "move it out of the way or choose another place";
      case "create":
        return "choose another place";
      case "write":
      case "read":
        return osCode(e.cause) === "EIO" ? "check the disk, then run the same command again" : undefined;
      default:
        return undefined;
    }
  }
  if (e instanceof FetchError) {
    const metadata = /metadata/i.test(e.message);
    switch (e.code) {
      case "timeout":
        return metadata
          ? "try again later, allow longer with --metadata-timeout, or add a tracker (-t URL) or peer (--peer)"
          : "run the same command again to resume, or allow longer with --timeout";
      case "stalled":
        return "run the same command again later to resume, or add peers with --peer or a tracker with -t";
      case "no-peers":
        return "add a tracker (-t URL) or a peer (--peer HOST:PORT)";
      case "bad-data":
        return "run the same command again to try other peers";
      case "incomplete":
        return "fetch the rest with 'btfetch get', or point -d at the folder that holds <name>";
      case "listen":
        return "choose another port with --port (0: any free port)";
    }
  }
  if (e instanceof SourceError && e.code === "network") return "check the URL and the network";
  if (e instanceof BencodeError) return "is it a .torrent file?";
  return undefined;
}

/**
 * The one line for an error that ended a command: its message in plain words and, where there is one, what to do.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import { FetchError } from "../engine/errors.ts";
 * eq(errorText(new FetchError("listen", "Cannot listen on port 80: permission denied")),
 *   "Cannot listen on port 80: permission denied; choose another port with --port (0: any free port)");
 * ```
 */
export function errorText(e: unknown): string {
  const msg = plainMessage(e);
  const what = hint(e);
  return what ? `${msg}; ${what}` : msg;
}
