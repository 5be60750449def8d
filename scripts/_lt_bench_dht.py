#!/usr/bin/python3
"""python3-libtorrent side of the `dht` scenario of scripts/bench.ts (loopback only). Run with Debian's /usr/bin/python3.

  _lt_bench_dht.py --mode swarm --nodes N --seed TORRENT --seed-dir DIR [--max-seconds S]
      N plain DHT nodes and one seeder of TORRENT (data at DIR/<name>), each its own libtorrent session on its own
      127.0.0.1 port, every one told of every other with add_dht_node(). The seeder uses libtorrent's
      high_performance_seed() preset. Prints "NODE <port>" for each plain node, "SEEDER <port>", then "READY" once every
      routing table holds the others, the seeder is seeding and its DHT announce has been stored by ANNOUNCE_NODES of the
      nodes (or ANNOUNCE_WAIT_S has passed since the first was). Runs until stdin closes, SIGTERM/SIGINT or S seconds.
  _lt_bench_dht.py --mode leech --magnet URI --dir DIR --bootstrap HOST:PORT [--max-seconds S]
      A fresh downloader given only the magnet and one DHT node (add_dht_node(); the bootstrap router list is empty).
      Prints "AT <what> <ms since start>" for dht-up (its routing table has a node), dht-peers (the first DHT reply that
      carried peers), metadata and complete, then "DONE" and exits the moment it has every piece (it waits on the
      session's alerts, so it hears of the finished torrent at once). It runs with libtorrent's high_performance_seed()
      preset as well: the defaults cap a fast download (max_queued_disk_bytes 1 MiB, max_out_request_queue 500).

Every session: DHT on, bound to 127.0.0.1, no bootstrap routers; local peer discovery, UPnP, NAT-PMP, uTP and PEX off;
libtorrent's checks that break a DHT on one address (dht_restrict_routing_ips, dht_restrict_search_ips,
dht_enforce_node_id, dht_prefer_verified_node_ids) off and its per-IP flood block (dht_block_ratelimit) out of reach, as
in tests/interop/lt_dht.py. A torrent added before its session's DHT is up gets no DHT announce for minutes, so the
downloader calls force_dht_announce() as soon as its routing table holds a node and again every REANNOUNCE_S while it
has no peer, and the seeder once the DHT is up: libtorrent is then limited by its lookups, not by its announce timer.
"""

import argparse
import os
import signal
import sys
import threading
import time
import warnings

import libtorrent as lt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop"))
from _lt_loopback import dht_loopback_settings, host_port, out, torrent_flags, watch_stdin  # noqa: E402

# session.status() (for its dht_nodes count) is deprecated in libtorrent 2.0 but still the simplest synchronous count
warnings.filterwarnings("ignore", category=DeprecationWarning)

stop = threading.Event()
READY_TIMEOUT_S = 30.0
ANNOUNCE_NODES = 8
ANNOUNCE_WAIT_S = 2.0
REANNOUNCE_S = 1.0


def loopback_settings():
    """What every session here needs to run a DHT on 127.0.0.1 and nothing else."""
    settings = dht_loopback_settings()
    settings["alert_mask"] = (
        lt.alert.category_t.status_notification
        | lt.alert.category_t.error_notification
        | lt.alert.category_t.dht_notification
    )
    return settings


def wait_listening(sessions):
    by = time.time() + 5.0
    while any(s.listen_port() == 0 for s in sessions):
        if time.time() > by:
            return False
        time.sleep(0.01)
    return True


def fatal(a):
    return isinstance(a, (lt.torrent_error_alert, lt.file_error_alert, lt.listen_failed_alert))


def swarm(args, deadline):
    nodes = []
    for _ in range(args.nodes):
        s = loopback_settings()
        s["aio_threads"] = 1  # a plain node never touches a disk
        nodes.append(lt.session(s))
    seed_settings = lt.high_performance_seed()
    seed_settings.update(loopback_settings())
    seeder = lt.session(seed_settings)
    sessions = nodes + [seeder]
    if not wait_listening(sessions):
        out("ERROR a session did not start listening")
        return 2
    ports = [s.listen_port() for s in sessions]
    for s in nodes:
        out("NODE %d" % s.listen_port())
    out("SEEDER %d" % seeder.listen_port())
    for s, port in zip(sessions, ports):
        for p in ports:
            if p != port:
                s.add_dht_node(("127.0.0.1", p))

    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(args.seed)
    atp.save_path = args.seed_dir
    atp.flags = torrent_flags(atp.flags)
    h = seeder.add_torrent(atp)
    seeder_port = seeder.listen_port()

    want = min(8, len(sessions) - 1)
    announced = 0  # nodes that stored the seeder's announce
    first_announce = None
    forced = False
    ready = False
    ready_by = time.time() + READY_TIMEOUT_S
    while not stop.is_set() and time.time() < deadline:
        for s in sessions:
            for a in s.pop_alerts():
                if fatal(a):
                    out("ERROR %s" % a.message())
                    return 2
                if isinstance(a, lt.dht_announce_alert) and a.port == seeder_port:
                    announced += 1
                    first_announce = first_announce or time.time()
        if not ready:
            up = all(s.status().dht_nodes >= want for s in sessions) and h.status().is_seeding
            if up and not forced:
                forced = True
                h.force_dht_announce()
            if forced and (announced >= min(ANNOUNCE_NODES, len(nodes))
                           or (first_announce and time.time() - first_announce >= ANNOUNCE_WAIT_S)):
                ready = True
                out("READY %d" % announced)
            elif time.time() > ready_by:
                counts = [s.status().dht_nodes for s in sessions]
                out("ERROR not ready after %d s: routing tables %s (want %d), seeding %s, announce stored by %d" %
                    (READY_TIMEOUT_S, counts, want, h.status().is_seeding, announced))
                return 2
        time.sleep(0.02 if not ready else 0.1)
    return 0


def leech(args, deadline):
    t0 = time.time()

    def at(what):
        out("AT %s %d" % (what, round((time.time() - t0) * 1000)))

    # libtorrent's throughput preset, as for the seeder: its defaults cap a fast download (1 MiB of writes queued, 500
    # requests out to a peer), and the reference should not be held back by its configuration
    settings = lt.high_performance_seed()
    settings.update(loopback_settings())
    ses = lt.session(settings)
    ses.add_dht_node(host_port(args.bootstrap))
    atp = lt.parse_magnet_uri(args.magnet)
    atp.save_path = args.dir
    atp.flags = torrent_flags(atp.flags)
    h = ses.add_torrent(atp)
    dht_up = False
    peers_seen = False
    metadata = False
    last_announce = 0.0
    while not stop.is_set() and time.time() < deadline:
        for a in ses.pop_alerts():
            if fatal(a):
                out("ERROR %s" % a.message())
                return 2
            if isinstance(a, lt.dht_reply_alert) and a.num_peers > 0 and not peers_seen:
                peers_seen = True
                at("dht-peers")
        st = h.status()
        if st.errc.value() != 0:
            out("ERROR %s" % st.errc.message())
            return 2
        now = time.time()
        if not dht_up and ses.status().dht_nodes > 0:
            dht_up = True
            at("dht-up")
        if dht_up and st.num_peers == 0 and not st.is_seeding and now - last_announce >= REANNOUNCE_S:
            last_announce = now
            h.force_dht_announce()
        if not metadata and st.has_metadata:
            metadata = True
            at("metadata")
        if st.has_metadata and st.is_seeding:
            at("complete")
            out("DONE")
            return 0
        # woken at once by an alert (metadata, finished, DHT replies); polled every 5 ms only until its DHT is up
        ses.wait_for_alert(5 if not dht_up else 100)
    out("ERROR timed out")
    return 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["swarm", "leech"], required=True)
    ap.add_argument("--nodes", type=int, default=11)
    ap.add_argument("--seed")
    ap.add_argument("--seed-dir")
    ap.add_argument("--magnet")
    ap.add_argument("--dir")
    ap.add_argument("--bootstrap")
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    args = ap.parse_args()
    if args.mode == "swarm" and (args.seed is None or args.seed_dir is None):
        ap.error("--mode swarm needs --seed and --seed-dir")
    if args.mode == "leech" and (args.magnet is None or args.dir is None or args.bootstrap is None):
        ap.error("--mode leech needs --magnet, --dir and --bootstrap")

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    deadline = time.time() + args.max_seconds
    if args.mode == "swarm":
        threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
        return swarm(args, deadline)
    return leech(args, deadline)


if __name__ == "__main__":
    sys.exit(main())
