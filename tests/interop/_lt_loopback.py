"""What the python3-libtorrent helpers share (tests/interop/lt_*.py and scripts/_lt_bench_dht.py, which puts this
folder on its import path): line output, the stdin watch that ends a helper when its parent goes, and the settings a
session needs to run its DHT on 127.0.0.1 alone. Run with Debian's /usr/bin/python3.
"""

import os
import sys

import libtorrent as lt


def out(line):
    """Writes one line to stdout at once (the parent reads the helper line by line)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def watch_stdin(stop):
    """Reads stdin until it closes (the parent went away), then sets `stop`. Run it on a daemon thread."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    stop.set()


def dht_loopback_settings():
    """A session's settings for a DHT on 127.0.0.1 and nothing else: no bootstrap routers, no LSD, UPnP, NAT-PMP or
    uTP, and libtorrent's checks that break a DHT whose nodes all share one address turned off."""
    return {
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "",
        "enable_dht": True,
        "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        # libtorrent blocks an IP that sends it more than dht_block_ratelimit (5) packets a second, averaged over
        # 10 s, for dht_block_timeout (5 min). On loopback every node is 127.0.0.1, so a busy node (the seeder,
        # in a DHT of 8) soon ignores everybody, btfetch included: its queries time out.
        "dht_block_ratelimit": 100000,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "ssrf_mitigation": False,
    }


def torrent_flags(flags):
    """`add_torrent_params.flags` for a torrent that starts at once and uses neither PEX nor LSD."""
    flags = flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    return flags | lt.torrent_flags.disable_pex | lt.torrent_flags.disable_lsd


def host_port(s):
    """"HOST:PORT" -> (host, port)."""
    host, port = s.rsplit(":", 1)
    return host, int(port)
