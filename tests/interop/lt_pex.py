#!/usr/bin/python3
"""A loopback-only python3-libtorrent peer with peer exchange (ut_pex, BEP 11) ON, for btfetch's PEX interop tests.

Run with Debian's /usr/bin/python3 (python3-libtorrent is built for it).

  lt_pex.py --torrent FILE --dir DATADIR [--port N] [--mode seed|leech|idle] [--connect HOST:PORT]...
            [--upload-rate BYTES_PER_S] [--no-pex] [--max-seconds S]

seed:  checks DATADIR/<name> against the torrent, then seeds it; "READY <port>" once seeding.
leech: downloads into DATADIR; "READY <port>" once listening, "DONE" once it has every piece.
idle:  every file at priority 0: it holds no piece, wants none and downloads nothing, but stays in the swarm
       (connected, exchanging peers); "READY <port>" once listening.

It prints "PEER <ip>:<port>" for each peer connection and, whenever the set changes, the peers it is connected to:
  PEERS [{"ip": ..., "port": ..., "source": <peer_info source bits>, "pex": bool, "outgoing": bool,
          "connecting": bool, "in_handshake": bool}, ...]
(`pex` is the source bit lt.peer_info.pex: the peer was learnt through ut_pex). Also "DISCONNECT <ip>:<port> <why>".

DHT, local peer discovery, UPnP, NAT-PMP and uTP are off; the session listens on 127.0.0.1 only and several
connections per IP are allowed (everything here is 127.0.0.1). Redundant connections are kept (an idle peer and a
seed are both "upload only", which libtorrent would otherwise hang up on).
The process exits when stdin closes, on SIGTERM/SIGINT, or after --max-seconds.
"""

import argparse
import json
import signal
import sys
import threading
import time

import libtorrent as lt
from _lt_loopback import out, watch_stdin

stop = threading.Event()


def peer_rows(h):
    rows = []
    for p in h.get_peer_info():
        rows.append({
            "ip": p.ip[0],
            "port": p.ip[1],
            "source": int(p.source),
            "pex": bool(p.source & lt.peer_info.pex),
            "outgoing": bool(p.flags & lt.peer_info.outgoing_connection),
            "connecting": bool(p.flags & lt.peer_info.connecting),
            "in_handshake": bool(p.flags & lt.peer_info.handshake),
        })
    rows.sort(key=lambda r: (r["ip"], r["port"]))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mode", choices=["seed", "leech", "idle"], default="seed")
    ap.add_argument("--connect", action="append", default=[])
    ap.add_argument("--upload-rate", type=int, default=0, help="bytes/s, 0 = unlimited")
    ap.add_argument("--no-pex", action="store_true")
    ap.add_argument("--max-seconds", type=float, default=300.0)
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
        "ssrf_mitigation": False,
        "min_reconnect_time": 1,
        "peer_connect_timeout": 5,
        "unchoke_slots_limit": 50,
        "upload_rate_limit": args.upload_rate,
        "close_redundant_connections": False,
        "alert_mask": lt.alert.category_t.status_notification
        | lt.alert.category_t.error_notification
        | lt.alert.category_t.connect_notification
        | lt.alert.category_t.peer_notification,
    }
    ses = lt.session(settings)
    if args.upload_rate > 0:
        # Loopback peers are exempt from rate limits by default: put every address in the global peer class.
        pcf = lt.ip_filter()
        pcf.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(pcf)

    ti = lt.torrent_info(args.torrent)
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = args.dir
    atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    atp.flags |= lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
    if args.no_pex:
        atp.flags |= lt.torrent_flags.disable_pex
    if args.mode == "idle":
        atp.file_priorities = [0] * ti.num_files()
    h = ses.add_torrent(atp)
    for hp in args.connect:
        host, port = hp.rsplit(":", 1)
        h.connect_peer((host, int(port)), 0)

    ready = False
    done = False
    last_rows = None
    deadline = time.time() + args.max_seconds
    while not stop.is_set() and time.time() < deadline:
        ses.wait_for_alert(100)
        for a in ses.pop_alerts():
            if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
                out("ERROR %s" % a.message())
            elif isinstance(a, lt.peer_connect_alert):
                out("PEER %s:%d" % (a.endpoint[0], a.endpoint[1]))
            elif isinstance(a, lt.peer_disconnected_alert):
                out("DISCONNECT %s:%d %s" % (a.endpoint[0], a.endpoint[1], a.error.message()))
            elif isinstance(a, lt.listen_failed_alert):
                out("ERROR %s" % a.message())
                return 2
        st = h.status()
        if st.errc.value() != 0:
            out("ERROR %s" % st.errc.message())
            return 2
        if not ready:
            if args.mode == "seed":
                ready = st.state == lt.torrent_status.seeding
            else:
                ready = st.state not in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
            if ready:
                out("READY %d" % ses.listen_port())
        if args.mode == "leech" and not done and st.is_seeding:
            done = True
            out("DONE")
        rows = peer_rows(h)
        if rows != last_rows:
            last_rows = rows
            out("PEERS %s" % json.dumps(rows))
    ses.remove_torrent(h)
    return 0


if __name__ == "__main__":
    sys.exit(main())
