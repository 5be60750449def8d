/**
 * The DHT state kept between runs: our node id and the good nodes we knew, so the next start is warm (routers
 * throttle clients that always start cold). Kept in the user's cache folder by default — never in a download folder —
 * or in the file `--dht-state` names.
 *
 * The codec is pure and bounded; {@linkcode loadDhtState} and {@linkcode saveDhtState} do the file IO. A missing,
 * unreadable or malformed file is no error: the node starts cold with a new id.
 * @module
 */
import { formatAddress, parseAddress } from "../address.ts";
import { fromHex, toHex } from "../bytes.ts";
import { ID_BYTES, type NodeInfo } from "./node_id.ts";

/** Nodes saved at most (a routing table's good nodes are a few hundred at most). */
export const MAX_SAVED_NODES = 300;
/** The largest state file read (a few hundred nodes take ~30 KB). */
export const MAX_STATE_FILE_BYTES = 256 * 1024;
/** The version written; other versions are ignored. */
export const DHT_STATE_VERSION = 1;

/** What is saved. */
export interface DhtState {
  readonly id: Uint8Array;
  readonly nodes: readonly NodeInfo[];
}

/**
 * The state as JSON text.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const s = { id: new Uint8Array(20).fill(1), nodes: [{ id: new Uint8Array(20), address: { host: "10.0.0.1", port: 6881 } }] };
 * eq(decodeDhtState(encodeDhtState(s)), s);
 * ```
 */
export function encodeDhtState(s: DhtState): string {
  return JSON.stringify({
    version: DHT_STATE_VERSION,
    id: toHex(s.id),
    nodes: s.nodes.slice(0, MAX_SAVED_NODES).map((n) => ({ id: toHex(n.id), address: formatAddress(n.address) })),
  });
}

/** The state in `text`, or null when it is not a state file of this version; bad node entries are skipped. */
export function decodeDhtState(text: string): DhtState | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const o = v as { version?: unknown; id?: unknown; nodes?: unknown };
  if (o.version !== DHT_STATE_VERSION || typeof o.id !== "string" || !/^[0-9a-f]{40}$/.test(o.id)) return null;
  const nodes: NodeInfo[] = [];
  if (Array.isArray(o.nodes)) {
    for (const n of o.nodes.slice(0, MAX_SAVED_NODES)) {
      const e = n as { id?: unknown; address?: unknown };
      if (typeof e?.id !== "string" || !/^[0-9a-f]{40}$/.test(e.id) || typeof e.address !== "string") continue;
      try {
        nodes.push({ id: fromHex(e.id), address: parseAddress(e.address) });
      } catch { /* a bad entry is skipped */ }
    }
  }
  const id = fromHex(o.id);
  return id.length === ID_BYTES ? { id, nodes } : null;
}

/**
 * Where the state lives by default: `$XDG_CACHE_HOME/btfetch/dht.json` (else `~/.cache/...`) on Linux and the BSDs,
 * `~/Library/Caches/btfetch/dht.json` on macOS, `%LOCALAPPDATA%\btfetch\dht.json` on Windows; null when no home is
 * known (the node then starts cold every time).
 */
export function defaultDhtStatePath(env: (k: string) => string | undefined, os: string): string | null {
  if (os === "windows") {
    const base = env("LOCALAPPDATA");
    return base ? `${base}\\btfetch\\dht.json` : null;
  }
  const home = env("HOME");
  if (os === "darwin") return home ? `${home}/Library/Caches/btfetch/dht.json` : null;
  const xdg = env("XDG_CACHE_HOME");
  if (xdg && xdg.startsWith("/")) return `${xdg}/btfetch/dht.json`;
  return home ? `${home}/.cache/btfetch/dht.json` : null;
}

/** Reads the state file; null when it is missing, too large, unreadable or malformed. */
export function loadDhtState(path: string): DhtState | null {
  try {
    const st = Deno.statSync(path);
    if (!st.isFile || st.size > MAX_STATE_FILE_BYTES) return null;
    return decodeDhtState(Deno.readTextFileSync(path));
  } catch {
    return null;
  }
}

/**
 * Writes the state file atomically (a temporary file renamed over it; the temporary file is removed on failure).
 * Returns the error message on failure: losing this file costs a warm start, never the run.
 */
export function saveDhtState(path: string, s: DhtState): string | null {
  const dir = path.replace(/[\\/][^\\/]*$/, "");
  const tmp = `${path}.${Deno.pid}.tmp`;
  try {
    if (dir && dir !== path) Deno.mkdirSync(dir, { recursive: true });
    Deno.writeTextFileSync(tmp, encodeDhtState(s), { mode: 0o600 });
    Deno.renameSync(tmp, path);
    return null;
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never written */ }
    return e instanceof Error ? e.message : String(e);
  }
}
