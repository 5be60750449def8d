#!/usr/bin/python3
"""A loopback-only DHT of python3-libtorrent sessions for btfetch's DHT interop tests.

Run with Debian's /usr/bin/python3 (python3-libtorrent is built for it).

  lt_dht.py [--nodes N] [--seed TORRENT --seed-dir DIR] [--leech MAGNET --leech-dir DIR]
            [--add-node HOST:PORT]... [--max-seconds S] [--verbose]

Starts N plain DHT nodes, plus a seeder of TORRENT (data at DIR/<name>) and/or a downloader of MAGNET into DIR, each
its own libtorrent session on its own 127.0.0.1 port. Every session is told of every other one and of each
--add-node with add_dht_node() (nodes named as bootstrap routers never enter libtorrent's routing table; the bootstrap
node list is empty, so nothing but the given nodes is ever contacted).

Prints, one a line:
  NODE <port> / SEEDER <port> / LEECHER <port>   each session's port (TCP and DHT UDP), as it comes up
  READY                                          once every session's DHT routing table holds the nodes it was told of
  ANNOUNCE-IN <info-hash> <ip>:<port>            a session stored an announce_peer from another node (the seeder's
                                                 announce shows as one of these on each node it reached)
  DHT-PEERS <peers>                              a DHT announce of the downloader found peers (libtorrent says
                                                 nothing when it found none)
  METADATA                                       the downloader has the metadata (BEP 9)
  PEER <ip>:<port>                               a peer connection of the seeder or the downloader
  DONE                                           the downloader has every piece
  STATS SEEDER|LEECHER <uploaded> <downloaded>   payload byte counts, every 0.25 s
  ERROR <text>                                   then exits 2

Local peer discovery, UPnP, NAT-PMP, uTP and PEX are off; libtorrent's loopback-hostile DHT checks
(dht_restrict_routing_ips, dht_restrict_search_ips, dht_enforce_node_id, dht_prefer_verified_node_ids) are off, and its
per-IP flood block (dht_block_ratelimit) is out of reach, since every node here shares 127.0.0.1. A torrent
added before its session's DHT is up gets no announce for minutes, so the seeder and downloader call
force_dht_announce() once READY (the downloader again every 3 s until it has a peer).
The process exits when stdin closes, on SIGTERM/SIGINT, or after --max-seconds.
"""

import argparse
import signal
import sys
import threading
import time
import warnings

import libtorrent as lt
from _lt_loopback import dht_loopback_settings, host_port, out, torrent_flags, watch_stdin

# session.status() (for its dht_nodes count) is deprecated in libtorrent 2.0 but still the simplest synchronous count
warnings.filterwarnings("ignore", category=DeprecationWarning)

stop = threading.Event()
READY_TIMEOUT_S = 15.0
LEECH_REANNOUNCE_S = 3.0


def make_session():
    settings = dht_loopback_settings()
    settings.update(
        {
            "enable_outgoing_tcp": True,
            "enable_incoming_tcp": True,
            "min_reconnect_time": 1,
            "peer_connect_timeout": 5,
            "unchoke_slots_limit": 50,
            "close_redundant_connections": False,
            "alert_mask": lt.alert.category_t.status_notification
            | lt.alert.category_t.error_notification
            | lt.alert.category_t.dht_notification
            | lt.alert.category_t.connect_notification
            | lt.alert.category_t.peer_notification,
        }
    )
    return lt.session(settings)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=0)
    ap.add_argument("--seed")
    ap.add_argument("--seed-dir")
    ap.add_argument("--leech")
    ap.add_argument("--leech-dir")
    ap.add_argument("--add-node", action="append", default=[])
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--verbose", action="store_true", help="print every alert as LOG <role> <type> <message>")
    args = ap.parse_args()
    if (args.seed is None) != (args.seed_dir is None) or (args.leech is None) != (args.leech_dir is None):
        out("ERROR --seed needs --seed-dir and --leech needs --leech-dir")
        return 2

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    deadline = time.time() + args.max_seconds

    # (role, session) pairs; the plain nodes first
    sessions = [("NODE", make_session()) for _ in range(args.nodes)]
    if args.seed:
        sessions.append(("SEEDER", make_session()))
    if args.leech:
        sessions.append(("LEECHER", make_session()))
    if not sessions:
        out("ERROR no session asked for")
        return 2
    listen_by = time.time() + 5.0
    while any(s.listen_port() == 0 for _, s in sessions):
        if time.time() > listen_by:
            out("ERROR a session did not start listening")
            return 2
        time.sleep(0.02)
    ports = [s.listen_port() for _, s in sessions]
    for (role, _), port in zip(sessions, ports):
        out("%s %d" % (role, port))

    others = [host_port(n) for n in args.add_node]
    for (_, s), port in zip(sessions, ports):
        for p in ports:
            if p != port:
                s.add_dht_node(("127.0.0.1", p))
        for n in others:
            s.add_dht_node(n)

    seeder = next((s for role, s in sessions if role == "SEEDER"), None)
    leecher = next((s for role, s in sessions if role == "LEECHER"), None)
    seed_h = None
    if seeder is not None:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(args.seed)
        atp.save_path = args.seed_dir
        atp.flags = torrent_flags(atp.flags)
        seed_h = seeder.add_torrent(atp)

    def pump():
        """Prints what the sessions' alerts say; returns an error text when one is fatal."""
        for role, s in sessions:
            for a in s.pop_alerts():
                if args.verbose:
                    out("LOG %s %s %s" % (role, type(a).__name__, a.message()))
                if isinstance(a, lt.dht_announce_alert):
                    out("ANNOUNCE-IN %s %s:%d" % (a.info_hash, a.ip, a.port))
                elif isinstance(a, lt.dht_reply_alert) and role == "LEECHER":
                    out("DHT-PEERS %d" % a.num_peers)
                elif isinstance(a, lt.metadata_received_alert) and role == "LEECHER":
                    out("METADATA")
                elif isinstance(a, lt.peer_connect_alert) and role in ("SEEDER", "LEECHER"):
                    out("PEER %s:%d" % (a.endpoint[0], a.endpoint[1]))
                elif isinstance(a, (lt.torrent_error_alert, lt.file_error_alert, lt.listen_failed_alert)):
                    return a.message()
        return None

    # every session's routing table holds what it was told of (at most 8 per bucket: enough for these small DHTs)
    want = min(8, len(sessions) - 1 + len(others))
    ready_by = time.time() + READY_TIMEOUT_S
    while True:
        err = pump()
        if err is not None:
            out("ERROR %s" % err)
            return 2
        counts = [s.status().dht_nodes for _, s in sessions]
        seeding = seed_h is None or seed_h.status().is_seeding
        if all(c >= want for c in counts) and seeding:
            break
        if stop.is_set():
            return 0
        if time.time() > ready_by:
            out("ERROR DHT not up after %d s: routing tables %s (want %d), seeding %s" % (READY_TIMEOUT_S, counts, want, seeding))
            return 2
        time.sleep(0.05)

    leech_h = None
    if leecher is not None:
        atp = lt.parse_magnet_uri(args.leech)
        atp.save_path = args.leech_dir
        atp.flags = torrent_flags(atp.flags)
        leech_h = leecher.add_torrent(atp)
    if seed_h is not None:
        seed_h.force_dht_announce()
    if leech_h is not None:
        leech_h.force_dht_announce()
    out("READY")

    last_announce = time.time()
    last_stats = 0.0
    done = False
    watched = [(role, h) for role, h in (("SEEDER", seed_h), ("LEECHER", leech_h)) if h is not None]
    while not stop.is_set() and time.time() < deadline:
        err = pump()
        if err is not None:
            out("ERROR %s" % err)
            return 2
        for _, h in watched:
            st = h.status()
            if st.errc.value() != 0:
                out("ERROR %s" % st.errc.message())
                return 2
        now = time.time()
        if leech_h is not None:
            st = leech_h.status()
            if not done and st.has_metadata and st.is_seeding:
                done = True
                out("DONE")
            # no peer yet: ask the DHT again rather than wait libtorrent's own minutes
            if st.num_peers == 0 and not done and now - last_announce >= LEECH_REANNOUNCE_S:
                last_announce = now
                leech_h.force_dht_announce()
        if watched and now - last_stats >= 0.25:
            last_stats = now
            for role, h in watched:
                st = h.status()
                out("STATS %s %d %d" % (role, st.total_payload_upload, st.total_payload_download))
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
