#!/usr/bin/python3
"""A loopback-only python3-libtorrent peer for btfetch's interop tests.

Run with Debian's /usr/bin/python3 (python3-libtorrent is built for it).

  lt_seed.py --torrent FILE --dir DATADIR [--port N] [--mode seed|leech] [--tracker-ok]
             [--connect HOST:PORT]... [--upload-rate BYTES_PER_S] [--max-seconds S]

seed:  checks DATADIR/<name> against the torrent, then seeds it. Prints "READY <port>" once it is seeding (and, with
       --tracker-ok, once a tracker has answered an announce).
leech: starts with whatever is in DATADIR, prints "READY <port>" once listening, then "DONE" once it has every piece
       (it keeps seeding after that).
Also prints "PEER <ip>:<port>" for each peer connection and "STATS <uploaded> <downloaded>" every 0.25 s.

DHT, local peer discovery, UPnP, NAT-PMP, uTP and PEX are all off; the session listens on 127.0.0.1 only.
The process exits when stdin closes, on SIGTERM/SIGINT, or after --max-seconds.
"""

import argparse
import signal
import sys
import threading
import time

import libtorrent as lt
from _lt_loopback import out, watch_stdin

stop = threading.Event()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mode", choices=["seed", "leech"], default="seed")
    ap.add_argument("--tracker-ok", action="store_true")
    ap.add_argument("--connect", action="append", default=[])
    ap.add_argument("--max-seconds", type=float, default=600.0)
    ap.add_argument("--upload-rate", type=int, default=0, help="bytes/s, 0 = unlimited")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()

    settings = {
        "listen_interfaces": "127.0.0.1:%d" % args.port,
        "outgoing_interfaces": "",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_tcp": True,
        "enable_incoming_tcp": True,
        "dht_bootstrap_nodes": "",
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        # Loopback trackers with a query string are fine, but be explicit: nothing here leaves 127.0.0.1.
        "ssrf_mitigation": False,
        "min_reconnect_time": 1,
        "peer_connect_timeout": 5,
        "tracker_completion_timeout": 10,
        "unchoke_slots_limit": 50,
        "upload_rate_limit": args.upload_rate,
        "close_redundant_connections": False,
        "alert_mask": lt.alert.category_t.status_notification
        | lt.alert.category_t.error_notification
        | lt.alert.category_t.tracker_notification
        | lt.alert.category_t.connect_notification
        | lt.alert.category_t.peer_notification,
    }
    ses = lt.session(settings)
    if args.upload_rate > 0:
        # Peers on 127.0.0.0/8 count as "local" and are exempt from rate limits by default: put them in the global
        # peer class (which upload_rate_limit applies to) instead.
        pcf = lt.ip_filter()
        pcf.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(pcf)

    ti = lt.torrent_info(args.torrent)
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = args.dir
    atp.flags = (atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused) | lt.torrent_flags.disable_pex
    atp.flags |= lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
    h = ses.add_torrent(atp)
    for hp in args.connect:
        host, port = hp.rsplit(":", 1)
        h.connect_peer((host, int(port)), 0)

    ready = False
    done = False
    tracker_ok = not args.tracker_ok
    deadline = time.time() + args.max_seconds
    last_stats = 0.0
    while not stop.is_set() and time.time() < deadline:
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            if isinstance(a, lt.tracker_reply_alert):
                tracker_ok = True
                out("TRACKER-REPLY %d" % a.num_peers)
            elif isinstance(a, (lt.tracker_error_alert, lt.torrent_error_alert, lt.file_error_alert)):
                out("ERROR %s" % a.message())
            elif isinstance(a, lt.peer_connect_alert):
                out("PEER %s:%d" % (a.endpoint[0], a.endpoint[1]))
            elif isinstance(a, lt.listen_failed_alert):
                out("ERROR %s" % a.message())
                return 2
        st = h.status()
        if st.errc.value() != 0:
            out("ERROR %s" % st.errc.message())
            return 2
        if not ready:
            if args.mode == "seed":
                if st.state == lt.torrent_status.seeding and tracker_ok:
                    ready = True
            elif st.state not in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data):
                ready = True
            if ready:
                out("READY %d" % ses.listen_port())
        if args.mode == "leech" and not done and st.is_seeding:
            done = True
            out("DONE")
        now = time.time()
        if ready and now - last_stats >= 0.25:
            last_stats = now
            out("STATS %d %d" % (st.total_payload_upload, st.total_payload_download))
    st = h.status()
    out("STATS %d %d" % (st.total_payload_upload, st.total_payload_download))
    ses.remove_torrent(h)
    return 0


if __name__ == "__main__":
    sys.exit(main())
