/**
 * btfetch as a Deno library: parse torrents and magnet links, fetch and seed with an event callback (the same
 * events `--json` prints), make torrents, verify data. `main.ts` is a thin user of this surface.
 *
 * @example
 * ```ts ignore
 * import { parseMetainfo, runSession } from "./mod.ts";
 * const meta = parseMetainfo(await Deno.readFile("some.torrent"));
 * const result = await runSession({ meta, outDir: "downloads", onEvent: (e) => console.log(e.event) });
 * console.log(result.complete, result.downloaded);
 * ```
 * @module
 */
export { formatAddress, parseAddress, type PeerAddress } from "./address.ts";
export { Bitfield } from "./bitfield.ts";
export { BencodeError, type BencodeValue, decodeBencode, encodeBencode } from "./bencode.ts";
export { type Metainfo, MetainfoError, parseInfoDict, parseMetainfo, type TorrentFile } from "./metainfo.ts";
export { formatMagnet, type Magnet, MagnetError, magnetFromMetainfo, parseInfoHash, parseMagnet } from "./magnet.ts";
export { autoPieceLength, CreateError, type CreateOptions, createTorrent } from "./create.ts";
export { makePeerId, runSession, type SeedOptions, type SessionOptions, type SessionResult } from "./engine/session.ts";
export type { EventFile, PeerShare, SessionEvent, TimedEvent } from "./engine/events.ts";
export { FetchError, type FetchErrorCode } from "./engine/errors.ts";
export { Listener } from "./engine/listener.ts";
export { fetchMetadata, type MetadataFetchOptions } from "./engine/metadata_fetch.ts";
export { torrentFromInfo } from "./wire/metadata.ts";
export { PieceStore, StorageError } from "./storage/disk.ts";
export { loadOrVerify } from "./storage/resume.ts";
export * as limits from "./limits.ts";
