/**
 * Web-seeded torrents for the web seed interop tests, made by three implementations: mktorrent (`-w`),
 * python3-libtorrent's `create_torrent` (with BEP 47 padding files, `canonical_files`) and `btfetch create -w`; and
 * libtorrent as a downloader that fetches from a torrent's `url-list` only, to compare with btfetch's result.
 * @module
 */
import { runBtfetch } from "./_btfetch.ts";
import { infoHashOf, type MadeTorrent, startLibtorrentLeecher, SYSTEM_PYTHON } from "./_peers.ts";

/** What a made torrent describes, as the tests need it. */
export interface WsTorrent extends MadeTorrent {
  /** Bytes in the payload's real files (padding excluded). */
  readonly dataBytes: number;
  /** The torrent's total length, padding included. */
  readonly totalLength: number;
  readonly pieceLength: number;
  /** Paths (joined with `/`) of the padding files, if any. */
  readonly padFiles: readonly string[];
}

const DESCRIBE = `
import json, sys
import libtorrent as lt
ti = lt.torrent_info(sys.argv[1])
fs = ti.files()
pads = [fs.file_path(i) for i in range(fs.num_files()) if fs.file_flags(i) & lt.file_storage.flag_pad_file]
data = sum(fs.file_size(i) for i in range(fs.num_files()) if not fs.file_flags(i) & lt.file_storage.flag_pad_file)
print(json.dumps({"infoHash": str(ti.info_hash()), "name": ti.name(), "total": ti.total_size(),
                  "pieceLength": ti.piece_length(), "data": data, "pads": pads,
                  "urls": [w["url"] for w in ti.web_seeds()]}))
`;

/** Reads a .torrent with libtorrent (an independent parser): info-hash, sizes, padding files, web seeds. */
export async function describeTorrent(path: string): Promise<WsTorrent & { urlList: string[] }> {
  const r = await new Deno.Command(SYSTEM_PYTHON, {
    args: ["-c", DESCRIBE, path],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`libtorrent could not read ${path}: ${new TextDecoder().decode(r.stderr)}`);
  const j = JSON.parse(new TextDecoder().decode(r.stdout));
  return {
    path,
    infoHash: j.infoHash,
    name: j.name,
    dataBytes: j.data,
    totalLength: j.total,
    pieceLength: j.pieceLength,
    padFiles: j.pads,
    urlList: j.urls,
  };
}

/** `mktorrent -l LOG2 -w URL... PATH` (no tracker). */
export async function mktorrentWs(opts: {
  path: string;
  out: string;
  pieceLengthLog2: number;
  webSeeds: string[];
}): Promise<WsTorrent> {
  const args = ["-l", String(opts.pieceLengthLog2), "-o", opts.out, "-c", "btfetch interop (mktorrent)"];
  for (const w of opts.webSeeds) args.push("-w", w);
  await Deno.remove(opts.out).catch(() => {});
  const r = await new Deno.Command("mktorrent", { args: [...args, opts.path], stdout: "piped", stderr: "piped" })
    .output();
  if (!r.success) throw new Error(`mktorrent failed: ${new TextDecoder().decode(r.stderr)}`);
  const d = await describeTorrent(opts.out);
  if (d.infoHash !== await infoHashOf(opts.out)) throw new Error("describeTorrent disagrees with infoHashOf");
  return d;
}

const LT_PADDED = `
import json, os, sys
import libtorrent as lt
o = json.loads(sys.argv[1])
fs = lt.file_storage()
lt.add_files(fs, o["path"])
flags = lt.create_torrent.v1_only | lt.create_torrent.canonical_files
if not o.get("tailPadding", True):
    flags |= lt.create_torrent.canonical_files_no_tail_padding
ct = lt.create_torrent(fs, o["pieceLength"], flags=flags)
for u in o["webSeeds"]:
    ct.add_url_seed(u)
ct.set_creator("btfetch interop (libtorrent %s)" % lt.__version__)
lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(o["path"])))
with open(o["out"], "wb") as f:
    f.write(lt.bencode(ct.generate()))
`;

/**
 * A v1 torrent for the folder `path` by libtorrent's `create_torrent` with `canonical_files`: files in canonical
 * order, each aligned to a piece by a BEP 47 padding file (`.pad/N`, attr `p`), the last one too unless
 * `tailPadding` is false.
 */
export async function libtorrentPaddedWs(opts: {
  path: string;
  out: string;
  pieceLength: number;
  webSeeds: string[];
  tailPadding?: boolean;
}): Promise<WsTorrent> {
  const r = await new Deno.Command(SYSTEM_PYTHON, {
    args: ["-c", LT_PADDED, JSON.stringify(opts)],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`libtorrent create_torrent failed: ${new TextDecoder().decode(r.stderr)}`);
  return await describeTorrent(opts.out);
}

/** `btfetch create PATH -o OUT --piece-size SIZE -w URL...`, checked to exit 0. */
export async function btfetchCreateWs(opts: {
  path: string;
  out: string;
  pieceSize: string;
  webSeeds: string[];
}): Promise<WsTorrent> {
  const args = ["create", opts.path, "-o", opts.out, "--piece-size", opts.pieceSize];
  for (const w of opts.webSeeds) args.push("-w", w);
  const r = await runBtfetch(args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`btfetch create exited ${r.code}: ${r.stderr}`);
  return await describeTorrent(opts.out);
}

/**
 * libtorrent downloads `torrent` into `outDir` from its web seeds alone (no peer is ever named; DHT, LSD, PEX off).
 * Resolves with the time it took once every piece is there; throws after `timeoutMs`.
 */
export async function libtorrentFetch(torrent: string, outDir: string, timeoutMs: number): Promise<number> {
  await Deno.mkdir(outDir, { recursive: true });
  const t0 = performance.now();
  const lt = await startLibtorrentLeecher({ torrent, dataDir: outDir });
  try {
    await lt.waitDone(timeoutMs);
    return performance.now() - t0;
  } finally {
    await lt.close();
  }
}
