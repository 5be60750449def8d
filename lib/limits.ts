/**
 * Every bound btfetch puts on untrusted input, one named constant each, with the reason for its value.
 *
 * Codecs check lengths, counts and depths against these before they allocate or slice.
 * @module
 */

/** Size of a block we request and, by default, the largest block we serve (BEP 3: 16 KiB is what every client uses). */
export const BLOCK_BYTES = 16 * 1024;

/** The largest block we accept in a `piece` or `request` message; libtorrent and others refuse anything above 128 KiB. */
export const MAX_BLOCK_BYTES = 128 * 1024;

/** The most pieces a torrent may have: 2^21 pieces keep the bitfield at 256 KiB and `pieces` at 40 MiB. */
export const MAX_PIECES = 1 << 21;

/** The smallest piece length we accept (BEP 3 suggests powers of two; 16 KiB is the smallest any client makes). */
export const MIN_PIECE_LENGTH = 16 * 1024;

/** The largest piece length we accept: 256 MiB, well above the 16–64 MiB that large torrents use. */
export const MAX_PIECE_LENGTH = 256 * 1024 * 1024;

/** The largest torrent payload we accept, in bytes (2^53 - 1 keeps every offset an exact JavaScript number). */
export const MAX_TOTAL_LENGTH = Number.MAX_SAFE_INTEGER;

/** The most files a torrent may list; large real torrents list tens of thousands. */
export const MAX_FILES = 1_000_000;

/** The most components one file path may have. */
export const MAX_PATH_COMPONENTS = 256;

/** The longest path component, in bytes: the common file-system limit on a name. */
export const MAX_PATH_COMPONENT_BYTES = 255;

/** The largest .torrent file we read: the `pieces` string of MAX_PIECES pieces plus room for a large file list. */
export const MAX_TORRENT_BYTES = 64 * 1024 * 1024;

/** The deepest nesting of bencoded lists and dictionaries; real torrents nest at most 5 deep. */
export const BENCODE_MAX_DEPTH = 64;

/**
 * The largest peer-wire message body: a bitfield of MAX_PIECES pieces, or a `piece` message with the largest block
 * (id, index, begin, block), whichever is longer.
 */
export const MAX_MESSAGE_BYTES: number = Math.max(1 + MAX_PIECES / 8, 1 + 8 + MAX_BLOCK_BYTES);

/** The largest extension-protocol message (BEP 10) we accept: a metadata piece of 16 KiB plus its header. */
export const MAX_EXTENDED_MESSAGE_BYTES = 64 * 1024;

/** The largest tracker reply we read: 1 MiB holds over 170,000 compact peers, far more than any tracker sends. */
export const MAX_TRACKER_RESPONSE_BYTES = 1024 * 1024;

/** The most peers we take from one tracker reply. */
export const MAX_PEERS_PER_ANNOUNCE = 2000;

/** The most requests we keep outstanding to one peer; the pipeline adapts below this to the peer's rate. */
export const MAX_OUTSTANDING_REQUESTS = 2048;

/** The most requests from one peer we queue before treating it as a flood and dropping it. */
export const MAX_PEER_QUEUED_REQUESTS = 512;

/** The most peers one torrent keeps connected at once (the upper bound of `--max-peers`). */
export const MAX_PEERS_PER_TORRENT = 1000;

/** The most addresses a torrent remembers as candidates to connect to. */
export const MAX_KNOWN_PEERS = 10_000;

/** UDP tracker (BEP 15): the last retransmission attempt (0-based), after which the exchange gives up. */
export const UDP_TRACKER_MAX_ATTEMPT = 3;

/** The shortest announce interval we honour (seconds): a tracker asking for less would have us hammer it. */
export const MIN_ANNOUNCE_INTERVAL_S = 30;

/** The longest announce interval we honour (seconds): past 2 hours a swarm's peer list goes stale. */
export const MAX_ANNOUNCE_INTERVAL_S = 2 * 60 * 60;

/** The most characters of tracker-sent text (failure reason, warning, tracker id) we keep for messages and echoes. */
export const MAX_TRACKER_TEXT_CHARS = 1024;

/** The most digits a bencoded integer may have: 64 digits hold any 128-bit value; more is only a CPU sink. */
export const MAX_BENCODE_INTEGER_DIGITS = 64;

/** The most digits of a bencoded string length: 15 digits cover every length below 2^53, more can't fit any input. */
export const MAX_BENCODE_LENGTH_DIGITS = 15;

/** The smallest `piece length` a torrent may declare: 1 KiB admits old and small torrents; MAX_PIECES caps the count. */
export const MIN_TORRENT_PIECE_LENGTH = 1024;

/** The longest magnet URI we read: 64 KiB holds hundreds of trackers; longer is abuse. */
export const MAX_MAGNET_LENGTH = 64 * 1024;

/** The most file descriptors one torrent's storage keeps open at once (an LRU): torrents may list a million files. */
export const MAX_OPEN_FILES = 64;

/** The largest info dictionary (`metadata_size`, BEP 9) we accept from peers: it must fit a .torrent we would read. */
export const MAX_METADATA_BYTES = MAX_TORRENT_BYTES;

/** The most incoming connections still in their handshake: each holds a descriptor; a real swarm opens a few at once. */
export const MAX_PENDING_HANDSHAKES = 64;

/**
 * The largest info dictionary (BEP 9 `metadata_size`) a magnet fetch assembles, and so the most memory it holds for
 * metadata in flight: libtorrent's default `max_metadata_size` (30 MiB), so anything a libtorrent swarm can carry fits.
 */
export const MAX_FETCH_METADATA_BYTES = 30 * 1024 * 1024;

/** The most `&`-separated parameters one magnet URI may carry: room for hundreds of trackers, web seeds and peers. */
export const MAX_MAGNET_PARAMETERS = 2048;

/** The most `tr`/`tr.N` trackers one magnet URI may list (counted before de-duplication); real links list dozens. */
export const MAX_MAGNET_TRACKERS = 500;

/** The most `ws` web seeds one magnet URI may list (counted before de-duplication); real links list a handful. */
export const MAX_MAGNET_WEB_SEEDS = 100;

/** The most `x.pe` peers one magnet URI may list; more belong in a tracker or the DHT. */
export const MAX_MAGNET_PEERS = 200;

/**
 * The most BEP 53 `so` ranges one magnet URI may list, over all its `so` parameters; each range spans at most
 * MAX_FILES indexes and all of them together at most MAX_FILES, so sorting and merging them stays cheap.
 */
export const MAX_MAGNET_SELECT_RANGES = 10_000;

/**
 * The deepest nesting decodeBencode allows, whatever `maxDepth` a caller asks for: it recurses two frames a level and
 * Deno's default stack holds about 3,900 levels (measured here), so a quarter of that leaves the caller room.
 */
export const BENCODE_DEPTH_CEILING = 1000;

/**
 * The most lists and dictionaries one decodeBencode call reads: half of the 2^24 entries a V8 Map holds (the span
 * index is one), and 8 times what a torrent of MAX_FILES files needs.
 */
export const MAX_BENCODE_CONTAINERS = 2 ** 23;

/** DHT: nodes waiting per routing-table bucket for a failing node's slot (BEP 5); 160 buckets of 8 bound the table. */
export const DHT_REPLACEMENTS_PER_BUCKET = 8;

/** DHT: queries one lookup sends at most: a lookup among millions of nodes converges in a few dozen. */
export const DHT_LOOKUP_MAX_QUERIES = 100;

/** DHT: unqueried nodes one lookup keeps, the closest first: liars listing thousands of ids cannot grow it. */
export const DHT_LOOKUP_MAX_NODES = 256;

/** DHT: distinct peers (`values`) one get_peers lookup collects: K nodes of a popular torrent give a few hundred. */
export const DHT_LOOKUP_MAX_PEERS = 2000;

/** DHT: tokens received (per node and info-hash) kept for announce_peer: K per torrent for hundreds of torrents. */
export const DHT_MAX_RECEIVED_TOKENS = 2048;

/** DHT: peers stored per info-hash announced to us: a packet's worth twice over; libtorrent keeps similar numbers. */
export const DHT_MAX_PEERS_PER_INFOHASH = 100;

/** DHT: info-hashes whose announced peers we store: 1000 × 100 peers stays within a few MiB. */
export const DHT_MAX_STORED_INFOHASHES = 1000;

/**
 * DHT: stored peers of one info-hash that share an IP address (ports): users behind one NAT keep their place, while
 * one host announcing port after port cannot push the swarm's other peers out.
 */
export const DHT_MAX_PORTS_PER_IP = 8;

/**
 * DHT: stored peers of one IP address over every info-hash: a client seeding many torrents announces each to the few
 * nodes closest to it, so a node holds a handful of one host's torrents; one host cannot fill the store.
 */
export const DHT_MAX_STORED_PER_IP = 64;

/** DHT: peers (`values`) in one get_peers reply: 50 IPv6 peers (about 1 KiB) still fit one UDP packet. */
export const DHT_MAX_PEERS_PER_REPLY = 50;

/**
 * The largest KRPC (DHT) datagram we decode or send: a message is meant to fit one unfragmented UDP datagram (1472
 * bytes on a 1500-byte Ethernet MTU); 2048 leaves room for clients that pack a little more; larger is abuse.
 */
export const MAX_KRPC_PACKET_BYTES = 2048;

/** The deepest bencode nesting in a KRPC message: the protocol nests 3 deep, extensions (BEP 44 values) a bit more. */
export const MAX_KRPC_DEPTH = 16;

/** The longest KRPC transaction id `t`: libtorrent uses 2 bytes, others 4 or 8; 16 leaves room and bounds the echo. */
export const MAX_KRPC_TRANSACTION_ID_BYTES = 16;

/** The longest KRPC query name `q` we read: the longest in any BEP, `sample_infohashes`, has 17 bytes. */
export const MAX_KRPC_QUERY_NAME_BYTES = 32;

/** The longest DHT token (`token`): libtorrent sends 4 bytes, others up to a 20-byte SHA-1; 64 is ample. */
export const MAX_KRPC_TOKEN_BYTES = 64;

/** The longest client version `v` we keep (by convention 2 letters and 2 bytes of version); longer is dropped. */
export const MAX_KRPC_VERSION_BYTES = 16;

/** The most nodes of one address family in one KRPC reply: K is 8, and a few clients answer with up to 16. */
export const MAX_KRPC_NODES = 16;

/** The most peers in the `values` of one `get_peers` reply: libtorrent sends at most 100; 200 take 1600 bytes. */
export const MAX_KRPC_VALUES = 200;

/** The most entries in a `want` list (BEP 32): two are defined (`n4`, `n6`); a few more are tolerated and ignored. */
export const MAX_KRPC_WANT_ENTRIES = 8;

/** The longest KRPC error message (`e[1]`) we read or send: real ones are a few words; this keeps a reply small. */
export const MAX_KRPC_ERROR_MESSAGE_BYTES = 512;

/**
 * The most peers one ut_pex message (BEP 11) may add, IPv4 and IPv6 together, and the most it may drop: BEP 11 asks
 * for at most 50 of each after the first message and libtorrent sends up to 100, so twice that is a flood.
 */
export const PEX_MAX_RECEIVED_ENTRIES = 200;

/** The most addresses one received ut_pex message hands to the peer pool: libtorrent's largest message adds 100. */
export const PEX_MAX_LEARNT_PER_MESSAGE = 100;

/** The shortest gap between two ut_pex messages from one peer (BEP 11: one a minute; 15 s of slack for delays). */
export const PEX_MIN_RECEIVE_INTERVAL_MS = 45_000;

/** Web seeds: the longest URL we build or follow; nginx and Apache refuse request lines over 8 KiB by default. */
export const WEBSEED_MAX_URL_CHARS = 8000;

/** Web seeds: redirects followed for one request; mirrors use one or two (archive.org: one), loops end here. */
export const WEBSEED_MAX_REDIRECTS = 5;

/** Web seeds: the longest run of bytes asked of one seed at once: libtorrent's `urlseed_max_request_bytes`. */
export const WEBSEED_MAX_RUN_BYTES = 16 * 1024 * 1024;

/** Web seeds: the longest `Retry-After` honoured; a longer one is cut to this, so a seed is never parked for hours. */
export const WEBSEED_MAX_RETRY_AFTER_MS = 10 * 60_000;

/** Web seeds: runs in flight per seed: enough to hide a round trip per run; each may hold a connection of its own. */
export const WEBSEED_MAX_RUNS_IN_FLIGHT = 4;

/** Web seeds: body bytes of a `200` answer (the server ignored `Range`) read and dropped to reach the asked range. */
export const WEBSEED_MAX_SKIP_BYTES = 4 * 1024 * 1024;

/** Web seeds: failed pieces spanning several files tolerated from one seed before it is dropped as a liar. */
export const WEBSEED_MAX_BAD_PIECES = 16;
