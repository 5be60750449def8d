#!/usr/bin/python3
"""python3-libtorrent peer for scripts/bench.ts (loopback only). Run with Debian's /usr/bin/python3.

  _bench_lt.py --mode seed  --torrent FILE --dir DATADIR [--port N]
      Checks DATADIR/<name>, then seeds it. Prints "READY <port>" once seeding. Reads commands on stdin, one a line:
      "CONNECT <host>:<port>" makes it connect out to that peer; "STATS <tag>" makes it print "STATS <tag> <bytes>",
      the payload bytes it has uploaded so far (libtorrent updates the count once a second). Exits when stdin closes
      or on SIGTERM.
  _bench_lt.py --mode leech --torrent FILE --dir DATADIR [--connect HOST:PORT ...]
      Downloads into DATADIR from the peers (--connect repeats), prints "DONE" and exits as soon as it has every
      piece (it waits on the session's alerts, so it hears of the finished torrent at once: the process lifetime is the
      download time plus start-up).

DHT, local peer discovery, UPnP, NAT-PMP, uTP and PEX are off; the session listens on 127.0.0.1 only. A seeder starts
from libtorrent's own `high_performance_seed()` preset, so the reference seeder is not what limits a measurement (with
the defaults it capped every downloader), and so does a downloader: libtorrent's defaults cap a fast download too
(max_queued_disk_bytes 1 MiB, max_out_request_queue 500), and the reference should be libtorrent at its best.
"""

import argparse
import os
import signal
import sys
import threading
import time

import libtorrent as lt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop"))
from _lt_loopback import out  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["seed", "leech"], required=True)
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--connect", action="append", default=[])
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    args = ap.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    settings = lt.high_performance_seed()
    settings.update({
        "listen_interfaces": "127.0.0.1:%d" % args.port,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "dht_bootstrap_nodes": "",
        "allow_multiple_connections_per_ip": True,
        "close_redundant_connections": False,
        # errors, and status changes (a finished torrent) so that a downloader wakes the moment it has every piece
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
    })
    ses = lt.session(settings)
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(args.torrent)
    atp.save_path = args.dir
    atp.flags = (atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused) | lt.torrent_flags.disable_pex
    atp.flags |= lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
    h = ses.add_torrent(atp)

    def connect(hp):
        host, port = hp.strip().rsplit(":", 1)
        h.connect_peer((host, int(port)), 0)

    deadline = time.time() + args.max_seconds
    if args.mode == "leech":
        for hp in args.connect:
            connect(hp)
        while not stop.is_set() and time.time() < deadline:
            if h.status().is_seeding:
                out("DONE")
                return 0
            ses.wait_for_alert(100)
            for a in ses.pop_alerts():
                if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
                    out("ERROR %s" % a.message())
                    return 2
        out("ERROR timed out")
        return 4

    def read_stdin():
        for line in sys.stdin:
            if line.startswith("CONNECT "):
                connect(line[len("CONNECT "):])
            elif line.split(" ", 1)[0].strip() == "STATS":
                tag = line[len("STATS"):].strip()
                out("STATS %s %d" % (tag, h.status().total_payload_upload))
        stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    ready = False
    while not stop.is_set() and time.time() < deadline:
        ses.wait_for_alert(100)
        for a in ses.pop_alerts():
            if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert, lt.listen_failed_alert)):
                out("ERROR %s" % a.message())
                return 2
        if not ready and h.status().is_seeding:
            ready = True
            out("READY %d" % ses.listen_port())
    return 0


if __name__ == "__main__":
    sys.exit(main())
