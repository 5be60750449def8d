import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { seeded } from "../_gen.ts";
import { genKrpc } from "./_krpc_gen.ts";
import npmBencode from "bencode";
import {
  COMPACT_NODE_V4_BYTES,
  COMPACT_NODE_V6_BYTES,
  decodeCompactNodes,
  decodeCompactPeer,
  decodeKrpc,
  DhtError,
  type DhtErrorCode,
  encodeCompactNodes,
  encodeCompactPeer,
  encodeKrpc,
  type KrpcMessage,
  type KrpcWant,
} from "../../lib/dht/krpc.ts";
import type { NodeInfo } from "../../lib/dht/node_id.ts";
import type { PeerAddress } from "../../lib/address.ts";
import { BencodeError, keyBytes, latin1Key } from "../../lib/bencode.ts";
import {
  MAX_KRPC_DEPTH,
  MAX_KRPC_ERROR_MESSAGE_BYTES,
  MAX_KRPC_NODES,
  MAX_KRPC_PACKET_BYTES,
  MAX_KRPC_QUERY_NAME_BYTES,
  MAX_KRPC_TOKEN_BYTES,
  MAX_KRPC_TRANSACTION_ID_BYTES,
  MAX_KRPC_VALUES,
  MAX_KRPC_VERSION_BYTES,
  MAX_KRPC_WANT_ENTRIES,
} from "../../lib/limits.ts";

// Packets are written as binary strings (one character per byte) and turned into bytes with keyBytes.

/** A bencoded string of binary string `x`. */
function s(x: string): string {
  return `${x.length}:${x}`;
}
const b = keyBytes;
const ID_A = "abcdefghij0123456789";
const ID_B = "mnopqrstuvwxyz123456";
const ID_C = "0123456789abcdefghij";

function port16(p: number): string {
  return String.fromCharCode(p >>> 8, p & 0xff);
}
function v4(ip: string, port: number): string {
  return ip.split(".").map((x) => String.fromCharCode(Number(x))).join("") + port16(port);
}
/** 16 address bytes from 8 groups (no `::`), and the port. */
function v6(groups: number[], port: number): string {
  return groups.map((g) => String.fromCharCode(g >>> 8, g & 0xff)).join("") + port16(port);
}
const LOOP6 = [0, 0, 0, 0, 0, 0, 0, 1];
const DOC6 = [0x2001, 0xdb8, 0, 0, 0, 0, 0xab, 0xcd];

interface Row {
  readonly name: string;
  readonly packet: string;
  readonly want: KrpcMessage;
}

/** Canonical packets: each decodes to `want` and re-encodes to the same bytes. */
const canonical: Row[] = [
  {
    name: "ping query (BEP 5 example)",
    packet: `d1:ad2:id${s(ID_A)}e1:q4:ping1:t2:aa1:y1:qe`,
    want: { y: "q", q: "ping", t: b("aa"), id: b(ID_A) },
  },
  {
    name: "ping response (BEP 5 example)",
    packet: `d1:rd2:id${s(ID_B)}e1:t2:aa1:y1:re`,
    want: { y: "r", t: b("aa"), id: b(ID_B) },
  },
  {
    name: "find_node query (BEP 5 example)",
    packet: `d1:ad2:id${s(ID_A)}6:target${s(ID_B)}e1:q9:find_node1:t2:aa1:y1:qe`,
    want: { y: "q", q: "find_node", t: b("aa"), id: b(ID_A), target: b(ID_B) },
  },
  {
    name: "find_node query wanting both families (BEP 32)",
    packet: `d1:ad2:id${s(ID_A)}6:target${s(ID_B)}4:wantl2:n42:n6ee1:q9:find_node1:t2:aa1:y1:qe`,
    want: { y: "q", q: "find_node", t: b("aa"), id: b(ID_A), target: b(ID_B), want: ["n4", "n6"] },
  },
  {
    name: "find_node query wanting IPv6 only, from a read-only node (BEP 43) with a 4-byte t",
    packet: `d1:ad2:id${s(ID_A)}6:target${s(ID_B)}4:wantl2:n6ee1:q9:find_node2:roi1e1:t4:\x00\x01\xfe\xff1:y1:qe`,
    want: { y: "q", q: "find_node", t: b("\x00\x01\xfe\xff"), id: b(ID_A), target: b(ID_B), want: ["n6"], ro: true },
  },
  {
    name: "find_node response with two IPv4 nodes",
    packet: `d1:rd2:id${s(ID_C)}5:nodes${
      s(ID_A + v4("127.0.0.1", 6881) + ID_B + v4("10.9.8.7", 65535))
    }e1:t2:aa1:y1:re`,
    want: {
      y: "r",
      t: b("aa"),
      id: b(ID_C),
      nodes: [
        { id: b(ID_A), address: { host: "127.0.0.1", port: 6881 } },
        { id: b(ID_B), address: { host: "10.9.8.7", port: 65535 } },
      ],
    },
  },
  {
    name: "find_node response with IPv4 and IPv6 nodes (BEP 32)",
    packet: `d1:rd2:id${s(ID_C)}5:nodes${s(ID_A + v4("1.2.3.4", 1))}6:nodes6${
      s(ID_B + v6(LOOP6, 6881) + ID_C + v6(DOC6, 51413))
    }e1:t2:xy1:y1:re`,
    want: {
      y: "r",
      t: b("xy"),
      id: b(ID_C),
      nodes: [{ id: b(ID_A), address: { host: "1.2.3.4", port: 1 } }],
      nodes6: [
        { id: b(ID_B), address: { host: "::1", port: 6881 } },
        { id: b(ID_C), address: { host: "2001:db8::ab:cd", port: 51413 } },
      ],
    },
  },
  {
    name: "find_node response with no nodes",
    packet: `d1:rd2:id${s(ID_C)}5:nodes0:e1:t2:aa1:y1:re`,
    want: { y: "r", t: b("aa"), id: b(ID_C), nodes: [] },
  },
  {
    name: "get_peers query (BEP 5 example)",
    packet: `d1:ad2:id${s(ID_A)}9:info_hash${s(ID_B)}e1:q9:get_peers1:t2:aa1:y1:qe`,
    want: { y: "q", q: "get_peers", t: b("aa"), id: b(ID_A), infoHash: b(ID_B) },
  },
  {
    name: "get_peers query wanting IPv4 and IPv6, with a client version",
    packet: `d1:ad2:id${s(ID_A)}9:info_hash${s(ID_B)}4:wantl2:n42:n6ee1:q9:get_peers1:t2:aa1:v4:LT\x02\x001:y1:qe`,
    want: {
      y: "q",
      q: "get_peers",
      t: b("aa"),
      v: b("LT\x02\x00"),
      id: b(ID_A),
      infoHash: b(ID_B),
      want: ["n4", "n6"],
    },
  },
  {
    name: "get_peers response with values (BEP 5 example)",
    packet: `d1:rd2:id${s(ID_A)}5:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re`,
    want: {
      y: "r",
      t: b("aa"),
      id: b(ID_A),
      token: b("aoeusnth"),
      values: [{ host: "97.120.106.101", port: 11893 }, { host: "105.100.104.116", port: 28269 }],
    },
  },
  {
    name: "get_peers response with nodes and a token",
    packet: `d1:rd2:id${s(ID_A)}5:nodes${s(ID_B + v4("192.168.1.2", 4000))}5:token4:\x01\x02\x03\x04e1:t2:aa1:y1:re`,
    want: {
      y: "r",
      t: b("aa"),
      id: b(ID_A),
      nodes: [{ id: b(ID_B), address: { host: "192.168.1.2", port: 4000 } }],
      token: b("\x01\x02\x03\x04"),
    },
  },
  {
    name: "get_peers response with IPv4 and IPv6 values, nodes6, our address (BEP 42) and a version",
    packet: `d2:ip${s(v4("203.0.113.9", 50000))}1:rd2:id${s(ID_A)}6:nodes6${s(ID_C + v6(DOC6, 7))}5:token2:tk6:valuesl${
      s(v4("127.0.0.1", 6881))
    }${s(v6(LOOP6, 6882))}ee1:t2:aa1:v4:UT\x01\x021:y1:re`,
    want: {
      y: "r",
      t: b("aa"),
      v: b("UT\x01\x02"),
      id: b(ID_A),
      nodes6: [{ id: b(ID_C), address: { host: "2001:db8::ab:cd", port: 7 } }],
      values: [{ host: "127.0.0.1", port: 6881 }, { host: "::1", port: 6882 }],
      token: b("tk"),
      ip: { host: "203.0.113.9", port: 50000 },
    },
  },
  {
    name: "response carrying our IPv6 address (BEP 42)",
    packet: `d2:ip${s(v6(DOC6, 6881))}1:rd2:id${s(ID_A)}e1:t2:aa1:y1:re`,
    want: { y: "r", t: b("aa"), id: b(ID_A), ip: { host: "2001:db8::ab:cd", port: 6881 } },
  },
  {
    name: "announce_peer query with implied_port (BEP 5 example)",
    packet: `d1:ad2:id${s(ID_A)}12:implied_porti1e9:info_hash${
      s(ID_B)
    }4:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe`,
    want: {
      y: "q",
      q: "announce_peer",
      t: b("aa"),
      id: b(ID_A),
      infoHash: b(ID_B),
      port: 6881,
      impliedPort: true,
      token: b("aoeusnth"),
    },
  },
  {
    name: "announce_peer query without implied_port",
    packet: `d1:ad2:id${s(ID_A)}9:info_hash${
      s(ID_B)
    }4:porti65535e5:token4:\xff\xff\x00\x01e1:q13:announce_peer1:t1:z1:y1:qe`,
    want: {
      y: "q",
      q: "announce_peer",
      t: b("z"),
      id: b(ID_A),
      infoHash: b(ID_B),
      port: 65535,
      token: b("\xff\xff\x00\x01"),
    },
  },
  {
    name: "announce_peer query with implied_port 0 and port 1",
    packet: `d1:ad2:id${s(ID_A)}12:implied_porti0e9:info_hash${
      s(ID_B)
    }4:porti1e5:token0:e1:q13:announce_peer1:t2:aa1:y1:qe`,
    want: {
      y: "q",
      q: "announce_peer",
      t: b("aa"),
      id: b(ID_A),
      infoHash: b(ID_B),
      port: 1,
      impliedPort: false,
      token: b(""),
    },
  },
  {
    name: "announce_peer query with implied_port 1 and port 0 (the port is not used)",
    packet: `d1:ad2:id${s(ID_A)}12:implied_porti1e9:info_hash${
      s(ID_B)
    }4:porti0e5:token2:tke1:q13:announce_peer1:t2:aa1:y1:qe`,
    want: {
      y: "q",
      q: "announce_peer",
      t: b("aa"),
      id: b(ID_A),
      infoHash: b(ID_B),
      port: 0,
      impliedPort: true,
      token: b("tk"),
    },
  },
  {
    name: "announce_peer response (BEP 5 example)",
    packet: `d1:rd2:id${s(ID_B)}e1:t2:aa1:y1:re`,
    want: { y: "r", t: b("aa"), id: b(ID_B) },
  },
  {
    name: "error (BEP 5 example)",
    packet: "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
    want: { y: "e", t: b("aa"), code: 201, message: "A Generic Error Ocurred" },
  },
  {
    name: "error with a UTF-8 message and a version",
    packet: `d1:eli203e${s(latin1Key(new TextEncoder().encode("Protocole erroné")))}e1:t1:\x001:v2:xx1:y1:ee`,
    want: { y: "e", t: b("\x00"), v: b("xx"), code: 203, message: "Protocole erroné" },
  },
  {
    name: "ping query with ro 0 and a 16-byte t",
    packet: `d1:ad2:id${s(ID_A)}e1:q4:ping2:roi0e1:t16:0123456789abcdef1:y1:qe`,
    want: { y: "q", q: "ping", t: b("0123456789abcdef"), id: b(ID_A), ro: false },
  },
];

/** Packets real clients send that are not canonical: each decodes to `want`. */
const tolerated: Row[] = [
  {
    name: "unknown query (BEP 51 sample_infohashes) keeps its name and t",
    packet: `d1:ad2:id${s(ID_A)}6:target${s(ID_B)}e1:q17:sample_infohashes1:t2:aa1:y1:qe`,
    want: { y: "q", q: "unknown", t: b("aa"), method: "sample_infohashes" },
  },
  {
    name: "unknown query without arguments",
    packet: "d1:q3:get1:t2:aa1:v4:LT\x01\x001:y1:qe",
    want: { y: "q", q: "unknown", t: b("aa"), v: b("LT\x01\x00"), method: "get" },
  },
  {
    name: "a query named like a known one with other case is unknown",
    packet: `d1:ad2:id${s(ID_A)}e1:q4:PING1:t2:aa1:y1:qe`,
    want: { y: "q", q: "unknown", t: b("aa"), method: "PING" },
  },
  {
    name: "unsorted keys",
    packet: `d1:y1:q1:t2:aa1:q4:ping1:ad2:id${s(ID_A)}ee`,
    want: { y: "q", q: "ping", t: b("aa"), id: b(ID_A) },
  },
  {
    name: "duplicate keys: the first wins",
    packet: `d1:ad2:id${s(ID_A)}e1:q4:ping1:t2:aa1:t2:bb1:y1:qe`,
    want: { y: "q", q: "ping", t: b("aa"), id: b(ID_A) },
  },
  {
    name: "extra keys everywhere (BEP 33 noseed/scrape, BEP 51 samples, an ip in a query)",
    packet: `d1:ad2:id${s(ID_A)}9:info_hash${s(ID_B)}6:noseedi1e6:scrapei1ee2:ip${
      s(v4("1.2.3.4", 5))
    }1:q9:get_peers1:t2:aa1:y1:q1:zli1eee`,
    want: { y: "q", q: "get_peers", t: b("aa"), id: b(ID_A), infoHash: b(ID_B) },
  },
  {
    name: "a response with BEP 51 keys",
    packet: `d1:rd2:id${s(ID_A)}8:intervali21600e3:numi10e7:samples20:${ID_B}e1:t2:aa1:y1:re`,
    want: { y: "r", t: b("aa"), id: b(ID_A) },
  },
  {
    name: "a v longer than the limit is dropped",
    packet: `d1:ad2:id${s(ID_A)}e1:q4:ping1:t2:aa1:v${s("x".repeat(MAX_KRPC_VERSION_BYTES + 1))}1:y1:qe`,
    want: { y: "q", q: "ping", t: b("aa"), id: b(ID_A) },
  },
  {
    name: "a v that is an integer is dropped",
    packet: `d1:rd2:id${s(ID_A)}e1:t2:aa1:vi3e1:y1:re`,
    want: { y: "r", t: b("aa"), id: b(ID_A) },
  },
  {
    name: "an ip of the wrong size is dropped",
    packet: `d2:ip5:\x01\x02\x03\x04\x051:rd2:id${s(ID_A)}e1:t2:aa1:y1:re`,
    want: { y: "r", t: b("aa"), id: b(ID_A) },
  },
  {
    name: "an ip with port 0 is dropped",
    packet: `d2:ip${s(v4("1.2.3.4", 0))}1:rd2:id${s(ID_A)}e1:t2:aa1:y1:re`,
    want: { y: "r", t: b("aa"), id: b(ID_A) },
  },
  {
    name: "an ro that is not an integer is ignored; a nonzero one is true",
    packet: `d1:ad2:id${s(ID_A)}e1:q4:ping2:ro1:11:t2:aa1:y1:qe`,
    want: { y: "q", q: "ping", t: b("aa"), id: b(ID_A) },
  },
  {
    name: "ro 2 reads as read-only",
    packet: `d1:ad2:id${s(ID_A)}e1:q4:ping2:roi2e1:t2:aa1:y1:qe`,
    want: { y: "q", q: "ping", t: b("aa"), id: b(ID_A), ro: true },
  },
  {
    name: "unknown want entries are skipped",
    packet: `d1:ad2:id${s(ID_A)}6:target${s(ID_B)}4:wantl2:n52:n60:ee1:q9:find_node1:t2:aa1:y1:qe`,
    want: { y: "q", q: "find_node", t: b("aa"), id: b(ID_A), target: b(ID_B), want: ["n6"] },
  },
  {
    name: "an error sent as a bare string reads as a generic error",
    packet: "d1:e9:bad thing1:t2:aa1:y1:ee",
    want: { y: "e", t: b("aa"), code: 201, message: "bad thing" },
  },
  {
    name: "an error list with only a code",
    packet: "d1:eli202ee1:t2:aa1:y1:ee",
    want: { y: "e", t: b("aa"), code: 202, message: "" },
  },
  {
    name: "an error list with more items than two",
    packet: "d1:eli204e14:Method Unknowni1ee1:t2:aa1:y1:ee",
    want: { y: "e", t: b("aa"), code: 204, message: "Method Unknown" },
  },
  {
    name: "an error message of invalid UTF-8 keeps its ASCII, other bytes read as ?",
    packet: "d1:eli201e6:ok\xff\xfe\xc3!e1:t2:aa1:y1:ee",
    want: { y: "e", t: b("aa"), code: 201, message: "ok???!" },
  },
];

Deno.test("decodeKrpc() reads every kind of canonical packet, and encodeKrpc() gives the same bytes back", async (t) => {
  for (const row of canonical) {
    await t.step(row.name, () => {
      const packet = b(row.packet);
      assertEquals(decodeKrpc(packet), row.want);
      assertEquals(encodeKrpc(row.want), packet);
      assertEquals(encodeKrpc(decodeKrpc(packet)), packet);
    });
  }
});

Deno.test("decodeKrpc() tolerates what real clients send differently", async (t) => {
  for (const row of tolerated) {
    await t.step(row.name, () => {
      const m = decodeKrpc(b(row.packet));
      assertEquals(m, row.want);
      assertEquals(decodeKrpc(encodeKrpc(m)), m);
    });
  }
});

Deno.test("decodeKrpc() returns copies, not views into the packet", () => {
  const packet = b(`d1:ad2:id${s(ID_A)}6:target${s(ID_B)}e1:q9:find_node1:t2:aa1:y1:qe`);
  const m = decodeKrpc(packet);
  packet.fill(0);
  assertEquals(m, { y: "q", q: "find_node", t: b("aa"), id: b(ID_A), target: b(ID_B) });
});

interface ErrRow {
  readonly name: string;
  readonly packet: string | Uint8Array;
  readonly code: DhtErrorCode;
  readonly path: string;
  /** The transaction id and message type the error should carry, when read before the fault. */
  readonly t?: string;
  readonly y?: "q" | "r" | "e";
}

const q = (args: string, name = "get_peers", extra = ""): string => `d1:ad${args}e1:q${s(name)}1:t2:aa1:y1:q${extra}e`;
const r = (body: string, extra = ""): string => `d${extra}1:rd${body}e1:t2:aa1:y1:re`;
const id = `2:id${s(ID_A)}`;
const ih = `9:info_hash${s(ID_B)}`;
const nodes4 = (n: number): string => {
  let out = "";
  for (let i = 0; i < n; i++) out += ID_A + v4("10.0.0.1", 1000 + i);
  return out;
};

const errRows: ErrRow[] = [
  {
    name: "a packet over the size limit",
    packet: `d1:ad${id}e1:q4:ping1:t2:aa1:y1:q1:z${s("x".repeat(MAX_KRPC_PACKET_BYTES))}e`,
    code: "too-long",
    path: "",
  },
  { name: "an empty packet", packet: "", code: "bad-bencode", path: "" },
  { name: "truncated bencode", packet: "d1:t2:aa1:y1:", code: "bad-bencode", path: "" },
  { name: "bytes after the message", packet: `${r(id)}x`, code: "bad-bencode", path: "" },
  {
    name: "a non-canonical integer",
    packet: `d1:ad${id}e1:q4:ping2:roi01e1:t2:aa1:y1:qe`,
    code: "bad-bencode",
    path: "",
  },
  {
    name: "nesting deeper than the limit",
    packet: `d1:ad${id}e1:q4:ping1:t2:aa1:y1:q1:z${"l".repeat(MAX_KRPC_DEPTH)}${"e".repeat(MAX_KRPC_DEPTH)}e`,
    code: "bad-bencode",
    path: "",
  },
  { name: "a list, not a dictionary", packet: "l1:t2:aae", code: "wrong-type", path: "" },
  { name: "a string, not a dictionary", packet: "4:ping", code: "wrong-type", path: "" },
  { name: "no t", packet: `d1:ad${id}e1:q4:ping1:y1:qe`, code: "missing-key", path: "t" },
  { name: "an empty t", packet: `d1:ad${id}e1:q4:ping1:t0:1:y1:qe`, code: "bad-length", path: "t" },
  {
    name: "a t over the limit",
    packet: `d1:ad${id}e1:q4:ping1:t${s("x".repeat(MAX_KRPC_TRANSACTION_ID_BYTES + 1))}1:y1:qe`,
    code: "too-long",
    path: "t",
  },
  { name: "a t that is an integer", packet: `d1:ad${id}e1:q4:ping1:ti1e1:y1:qe`, code: "wrong-type", path: "t" },
  { name: "no y", packet: `d1:ad${id}e1:q4:ping1:t2:aae`, code: "missing-key", path: "y", t: "aa" },
  { name: "an unknown y", packet: `d1:ad${id}e1:q4:ping1:t2:aa1:y1:xe`, code: "bad-value", path: "y", t: "aa" },
  { name: "a y of two letters", packet: `d1:ad${id}e1:q4:ping1:t2:aa1:y2:qre`, code: "bad-value", path: "y", t: "aa" },
  { name: "a y that is a list", packet: `d1:t2:aa1:yl1:qee`, code: "wrong-type", path: "y", t: "aa" },
  { name: "a query without q", packet: `d1:ad${id}e1:t2:aa1:y1:qe`, code: "missing-key", path: "q", t: "aa", y: "q" },
  { name: "a q that is an integer", packet: "d1:qi1e1:t2:aa1:y1:qe", code: "wrong-type", path: "q", t: "aa", y: "q" },
  {
    name: "a q over the limit",
    packet: `d1:q${s("x".repeat(MAX_KRPC_QUERY_NAME_BYTES + 1))}1:t2:aa1:y1:qe`,
    code: "too-long",
    path: "q",
    t: "aa",
    y: "q",
  },
  {
    name: "a known query without a",
    packet: "d1:q4:ping1:t2:aa1:y1:qe",
    code: "missing-key",
    path: "a",
    t: "aa",
    y: "q",
  },
  {
    name: "an a that is a list",
    packet: "d1:al1:xe1:q4:ping1:t2:aa1:y1:qe",
    code: "wrong-type",
    path: "a",
    t: "aa",
    y: "q",
  },
  { name: "a query without id", packet: q(ih), code: "missing-key", path: "a.id", t: "aa", y: "q" },
  {
    name: "an id of 19 bytes",
    packet: q(`2:id${s(ID_A.slice(1))}${ih}`),
    code: "bad-length",
    path: "a.id",
    t: "aa",
    y: "q",
  },
  {
    name: "an id of 21 bytes",
    packet: q(`2:id${s(ID_A + "x")}${ih}`),
    code: "bad-length",
    path: "a.id",
    t: "aa",
    y: "q",
  },
  { name: "an id that is an integer", packet: q(`2:idi1e${ih}`), code: "wrong-type", path: "a.id", t: "aa", y: "q" },
  { name: "find_node without target", packet: q(id, "find_node"), code: "missing-key", path: "a.target", y: "q" },
  { name: "get_peers without info_hash", packet: q(id), code: "missing-key", path: "a.info_hash", y: "q" },
  {
    name: "get_peers with a short info_hash",
    packet: q(`${id}9:info_hash3:abc`),
    code: "bad-length",
    path: "a.info_hash",
    y: "q",
  },
  { name: "a want that is a string", packet: q(`${id}${ih}4:want2:n4`), code: "wrong-type", path: "a.want", y: "q" },
  {
    name: "a want entry that is an integer",
    packet: q(`${id}${ih}4:wantli4ee`),
    code: "wrong-type",
    path: "a.want[0]",
  },
  {
    name: "a want list over the limit",
    packet: q(`${id}${ih}4:wantl${"2:n4".repeat(MAX_KRPC_WANT_ENTRIES + 1)}e`),
    code: "too-many",
    path: "a.want",
  },
  {
    name: "announce_peer without port",
    packet: q(`${id}${ih}5:token2:tk`, "announce_peer"),
    code: "missing-key",
    path: "a.port",
    t: "aa",
    y: "q",
  },
  {
    name: "announce_peer with port 0",
    packet: q(`${id}${ih}4:porti0e5:token2:tk`, "announce_peer"),
    code: "bad-port",
    path: "a.port",
  },
  {
    name: "announce_peer with port 65536",
    packet: q(`${id}${ih}4:porti65536e5:token2:tk`, "announce_peer"),
    code: "bad-port",
    path: "a.port",
  },
  {
    name: "announce_peer with a negative port, even implied",
    packet: q(`${id}12:implied_porti1e${ih}4:porti-1e5:token2:tk`, "announce_peer"),
    code: "bad-port",
    path: "a.port",
  },
  {
    name: "announce_peer with a port that is a string",
    packet: q(`${id}${ih}4:port4:68815:token2:tk`, "announce_peer"),
    code: "wrong-type",
    path: "a.port",
  },
  {
    name: "announce_peer with implied_port 2",
    packet: q(`${id}12:implied_porti2e${ih}4:porti1e5:token2:tk`, "announce_peer"),
    code: "bad-value",
    path: "a.implied_port",
  },
  {
    name: "announce_peer with implied_port a string",
    packet: q(`${id}12:implied_port1:1${ih}4:porti1e5:token2:tk`, "announce_peer"),
    code: "wrong-type",
    path: "a.implied_port",
  },
  {
    name: "announce_peer without token",
    packet: q(`${id}${ih}4:porti1e`, "announce_peer"),
    code: "missing-key",
    path: "a.token",
  },
  {
    name: "announce_peer with a token over the limit",
    packet: q(`${id}${ih}4:porti1e5:token${s("k".repeat(MAX_KRPC_TOKEN_BYTES + 1))}`, "announce_peer"),
    code: "too-long",
    path: "a.token",
  },
  { name: "a response without r", packet: "d1:t2:aa1:y1:re", code: "missing-key", path: "r", t: "aa", y: "r" },
  { name: "an r that is a string", packet: "d1:r2:id1:t2:aa1:y1:re", code: "wrong-type", path: "r", y: "r" },
  { name: "a response without id", packet: r("5:nodes0:"), code: "missing-key", path: "r.id", t: "aa", y: "r" },
  { name: "a response with a short id", packet: r("2:id3:abc"), code: "bad-length", path: "r.id", y: "r" },
  {
    name: "nodes of 9 bytes (BEP 5's get_peers example)",
    packet: r(`${id}5:nodes9:def456...5:token8:aoeusnth`),
    code: "bad-length",
    path: "r.nodes",
  },
  { name: "nodes of 25 bytes", packet: r(`${id}5:nodes${s(nodes4(1).slice(1))}`), code: "bad-length", path: "r.nodes" },
  { name: "nodes that is a list", packet: r(`${id}5:nodesle`), code: "wrong-type", path: "r.nodes" },
  {
    name: "IPv4 nodes in nodes6",
    packet: r(`${id}6:nodes6${s(nodes4(1))}`),
    code: "bad-length",
    path: "r.nodes6",
  },
  {
    name: "nodes over the limit",
    packet: r(`${id}5:nodes${s(nodes4(MAX_KRPC_NODES + 1))}`),
    code: "too-many",
    path: "r.nodes",
  },
  {
    name: "a node with port 0",
    packet: r(`${id}5:nodes${s(nodes4(1) + ID_B + v4("10.0.0.2", 0))}`),
    code: "bad-port",
    path: "r.nodes[1]",
  },
  {
    name: "an IPv6 node with port 0",
    packet: r(`${id}6:nodes6${s(ID_B + v6(LOOP6, 0))}`),
    code: "bad-port",
    path: "r.nodes6[0]",
  },
  { name: "values that is a string", packet: r(`${id}6:values6:axje.u`), code: "wrong-type", path: "r.values" },
  { name: "a value of 7 bytes", packet: r(`${id}6:valuesl7:axje.uxe`), code: "bad-length", path: "r.values[0]" },
  {
    name: "a value of 12 bytes (two peers in one string)",
    packet: r(`${id}6:valuesl6:axje.u12:axje.uidhtnme`),
    code: "bad-length",
    path: "r.values[1]",
  },
  {
    name: "a value that is an integer",
    packet: r(`${id}6:valuesl6:axje.ui1ee`),
    code: "wrong-type",
    path: "r.values[1]",
  },
  {
    name: "a value with port 0",
    packet: r(`${id}6:valuesl${s(v4("1.2.3.4", 0))}e`),
    code: "bad-port",
    path: "r.values[0]",
  },
  {
    name: "values over the limit",
    packet: r(`${id}6:valuesl${s(v4("1.2.3.4", 5)).repeat(MAX_KRPC_VALUES + 1)}e`),
    code: "too-many",
    path: "r.values",
  },
  { name: "a token that is an integer", packet: r(`${id}5:tokeni1e`), code: "wrong-type", path: "r.token" },
  {
    name: "a token over the limit",
    packet: r(`${id}5:token${s("k".repeat(MAX_KRPC_TOKEN_BYTES + 1))}`),
    code: "too-long",
    path: "r.token",
  },
  { name: "an error without e", packet: "d1:t2:aa1:y1:ee", code: "missing-key", path: "e", t: "aa", y: "e" },
  { name: "an error with an empty list", packet: "d1:ele1:t2:aa1:y1:ee", code: "bad-value", path: "e", y: "e" },
  { name: "an error that is a dictionary", packet: "d1:ede1:t2:aa1:y1:ee", code: "wrong-type", path: "e", y: "e" },
  {
    name: "an error code that is a string",
    packet: "d1:el3:2013:abce1:t2:aa1:y1:ee",
    code: "wrong-type",
    path: "e[0]",
  },
  {
    name: "an error message that is an integer",
    packet: "d1:eli201ei1ee1:t2:aa1:y1:ee",
    code: "wrong-type",
    path: "e[1]",
  },
  {
    name: "an error message over the limit",
    packet: `d1:eli201e${s("m".repeat(MAX_KRPC_ERROR_MESSAGE_BYTES + 1))}e1:t2:aa1:y1:ee`,
    code: "too-long",
    path: "e[1]",
    t: "aa",
    y: "e",
  },
  {
    name: "a bare-string error over the limit",
    packet: `d1:e${s("m".repeat(MAX_KRPC_ERROR_MESSAGE_BYTES + 1))}1:t2:aa1:y1:ee`,
    code: "too-long",
    path: "e",
  },
  {
    name: "an error code beyond a safe integer",
    packet: "d1:eli99999999999999999999e3:abce1:t2:aa1:y1:ee",
    code: "bad-value",
    path: "e[0]",
  },
];

Deno.test("decodeKrpc() refuses malformed packets with a DhtError, its code and the key path", async (t) => {
  for (const row of errRows) {
    await t.step(row.name, () => {
      const packet = typeof row.packet === "string" ? b(row.packet) : row.packet;
      const err = assertThrows(() => decodeKrpc(packet), DhtError);
      assert(err instanceof SyntaxError);
      assertEquals([err.code, err.path], [row.code, row.path]);
      if (row.t !== undefined) assertEquals(err.transactionId, b(row.t));
      if (row.y !== undefined) assertEquals(err.messageType, row.y);
      if (row.code === "bad-bencode") assert(err.cause instanceof BencodeError);
    });
  }
});

Deno.test("decodeKrpc() accepts every limit exactly", async (t) => {
  const rows: { name: string; packet: string; check: (m: KrpcMessage) => boolean }[] = [
    {
      name: `t of ${MAX_KRPC_TRANSACTION_ID_BYTES} bytes`,
      packet: `d1:ad${id}e1:q4:ping1:t${s("x".repeat(MAX_KRPC_TRANSACTION_ID_BYTES))}1:y1:qe`,
      check: (m) => m.t.length === MAX_KRPC_TRANSACTION_ID_BYTES,
    },
    {
      name: `q of ${MAX_KRPC_QUERY_NAME_BYTES} bytes`,
      packet: `d1:q${s("x".repeat(MAX_KRPC_QUERY_NAME_BYTES))}1:t2:aa1:y1:qe`,
      check: (m) => m.y === "q" && m.q === "unknown" && m.method.length === MAX_KRPC_QUERY_NAME_BYTES,
    },
    {
      name: `${MAX_KRPC_NODES} nodes`,
      packet: r(`${id}5:nodes${s(nodes4(MAX_KRPC_NODES))}`),
      check: (m) => m.y === "r" && m.nodes?.length === MAX_KRPC_NODES,
    },
    {
      name: `${MAX_KRPC_VALUES} values`,
      packet: r(`${id}6:valuesl${s(v4("1.2.3.4", 5)).repeat(MAX_KRPC_VALUES)}e`),
      check: (m) => m.y === "r" && m.values?.length === MAX_KRPC_VALUES,
    },
    {
      name: `a token of ${MAX_KRPC_TOKEN_BYTES} bytes`,
      packet: r(`${id}5:token${s("k".repeat(MAX_KRPC_TOKEN_BYTES))}`),
      check: (m) => m.y === "r" && m.token?.length === MAX_KRPC_TOKEN_BYTES,
    },
    {
      name: `want of ${MAX_KRPC_WANT_ENTRIES} entries`,
      packet: q(`${id}${ih}4:wantl${"2:n4".repeat(MAX_KRPC_WANT_ENTRIES)}e`),
      check: (m) => m.y === "q" && m.q === "get_peers" && m.want?.length === MAX_KRPC_WANT_ENTRIES,
    },
    {
      name: `v of ${MAX_KRPC_VERSION_BYTES} bytes`,
      packet: `d1:ad${id}e1:q4:ping1:t2:aa1:v${s("v".repeat(MAX_KRPC_VERSION_BYTES))}1:y1:qe`,
      check: (m) => m.v?.length === MAX_KRPC_VERSION_BYTES,
    },
    {
      name: `an error message of ${MAX_KRPC_ERROR_MESSAGE_BYTES} bytes`,
      packet: `d1:eli201e${s("m".repeat(MAX_KRPC_ERROR_MESSAGE_BYTES))}e1:t2:aa1:y1:ee`,
      check: (m) => m.y === "e" && m.message.length === MAX_KRPC_ERROR_MESSAGE_BYTES,
    },
    {
      name: `nesting ${MAX_KRPC_DEPTH} deep`,
      packet: `d1:ad${id}e1:q4:ping1:t2:aa1:y1:q1:z${"l".repeat(MAX_KRPC_DEPTH - 1)}${"e".repeat(MAX_KRPC_DEPTH - 1)}e`,
      check: (m) => m.y === "q",
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => assert(row.check(decodeKrpc(b(row.packet)))));
  }
  await t.step(`a packet of exactly ${MAX_KRPC_PACKET_BYTES} bytes, and not one more`, () => {
    const head = `d1:ad${id}e1:q4:ping1:t2:aa1:y1:q1:z`;
    const room = MAX_KRPC_PACKET_BYTES - head.length - 1 - 5; // "e" at the end, "NNNN:" for the filler
    const packet = b(`${head}${s("x".repeat(room))}e`);
    assertEquals(packet.length, MAX_KRPC_PACKET_BYTES);
    assertEquals(decodeKrpc(packet).y, "q");
    const over = b(`${head}${s("x".repeat(room + 1))}e`);
    assertEquals(over.length, MAX_KRPC_PACKET_BYTES + 1);
    const err = assertThrows(() => decodeKrpc(over), DhtError);
    assertEquals([err.code, err.path], ["too-long", ""]);
  });
});

const base = { t: b("aa"), id: b(ID_A) };
const encodeErrRows: { name: string; msg: KrpcMessage }[] = [
  { name: "an empty t", msg: { y: "q", q: "ping", ...base, t: b("") } },
  {
    name: "a t over the limit",
    msg: { y: "q", q: "ping", ...base, t: new Uint8Array(MAX_KRPC_TRANSACTION_ID_BYTES + 1) },
  },
  { name: "a short id", msg: { y: "q", q: "ping", ...base, id: new Uint8Array(19) } },
  { name: "a short target", msg: { y: "q", q: "find_node", ...base, target: new Uint8Array(21) } },
  {
    name: "a want over the limit",
    msg: { y: "q", q: "get_peers", ...base, infoHash: b(ID_B), want: new Array<KrpcWant>(9).fill("n4") },
  },
  {
    name: "announce port 0 without implied_port",
    msg: { y: "q", q: "announce_peer", ...base, infoHash: b(ID_B), port: 0, token: b("x") },
  },
  {
    name: "announce port 65536",
    msg: { y: "q", q: "announce_peer", ...base, infoHash: b(ID_B), port: 65536, impliedPort: true, token: b("x") },
  },
  {
    name: "announce port 1.5",
    msg: { y: "q", q: "announce_peer", ...base, infoHash: b(ID_B), port: 1.5, token: b("x") },
  },
  {
    name: "a token over the limit",
    msg: { y: "q", q: "announce_peer", ...base, infoHash: b(ID_B), port: 1, token: new Uint8Array(65) },
  },
  { name: "an unknown query named ping", msg: { y: "q", q: "unknown", t: b("aa"), method: "ping" } },
  { name: "an unknown query name over the limit", msg: { y: "q", q: "unknown", t: b("aa"), method: "x".repeat(33) } },
  { name: "an unknown query name above U+00FF", msg: { y: "q", q: "unknown", t: b("aa"), method: "\u0100" } },
  {
    name: "an IPv6 node in nodes",
    msg: { y: "r", ...base, nodes: [{ id: b(ID_B), address: { host: "::1", port: 1 } }] },
  },
  {
    name: "an IPv4 node in nodes6",
    msg: { y: "r", ...base, nodes6: [{ id: b(ID_B), address: { host: "1.2.3.4", port: 1 } }] },
  },
  {
    name: "a node with port 0",
    msg: { y: "r", ...base, nodes: [{ id: b(ID_B), address: { host: "1.2.3.4", port: 0 } }] },
  },
  {
    name: "a node with a short id",
    msg: { y: "r", ...base, nodes: [{ id: b("x"), address: { host: "1.2.3.4", port: 1 } }] },
  },
  {
    name: "nodes over the limit",
    msg: {
      y: "r",
      ...base,
      nodes: new Array(MAX_KRPC_NODES + 1).fill({ id: b(ID_B), address: { host: "1.2.3.4", port: 1 } }),
    },
  },
  { name: "a value with a host name", msg: { y: "r", ...base, values: [{ host: "example.org", port: 1 }] } },
  {
    name: "values over the limit",
    msg: { y: "r", ...base, values: new Array(MAX_KRPC_VALUES + 1).fill({ host: "1.2.3.4", port: 1 }) },
  },
  { name: "an ip with port 0", msg: { y: "r", ...base, ip: { host: "1.2.3.4", port: 0 } } },
  { name: "a v over the limit", msg: { y: "r", ...base, v: new Uint8Array(MAX_KRPC_VERSION_BYTES + 1) } },
  { name: "an error code of 1.5", msg: { y: "e", t: b("aa"), code: 1.5, message: "" } },
  {
    name: "an error message over the limit, counted in UTF-8 bytes",
    msg: { y: "e", t: b("aa"), code: 201, message: "é".repeat(MAX_KRPC_ERROR_MESSAGE_BYTES / 2 + 1) },
  },
  {
    name: "a reply over the packet limit",
    msg: {
      y: "r",
      ...base,
      nodes: new Array(MAX_KRPC_NODES).fill({ id: b(ID_B), address: { host: "1.2.3.4", port: 1 } }),
      nodes6: new Array(MAX_KRPC_NODES).fill({ id: b(ID_B), address: { host: "::1", port: 1 } }),
      values: new Array(MAX_KRPC_VALUES).fill({ host: "1.2.3.4", port: 1 }),
    },
  },
];

Deno.test("encodeKrpc() refuses, with a RangeError, what decodeKrpc() would refuse", async (t) => {
  for (const row of encodeErrRows) {
    await t.step(row.name, () => void assertThrows(() => encodeKrpc(row.msg), RangeError));
  }
});

Deno.test("encodeKrpc() writes an unknown query as its name alone", () => {
  const m: KrpcMessage = { y: "q", q: "unknown", t: b("aa"), method: "sample_infohashes", v: b("LT") };
  assertEquals(encodeKrpc(m), b("d1:q17:sample_infohashes1:t2:aa1:v2:LT1:y1:qe"));
});

// ---------------------------------------------------------------------------------------------------------------
// Compact forms

Deno.test("decodeCompactNodes() and encodeCompactNodes() invert each other for both families", async (t) => {
  const n4: NodeInfo[] = [
    { id: b(ID_A), address: { host: "127.0.0.1", port: 6881 } },
    { id: b(ID_B), address: { host: "255.255.255.255", port: 1 } },
  ];
  const n6: NodeInfo[] = [
    { id: b(ID_A), address: { host: "::1", port: 6881 } },
    { id: b(ID_C), address: { host: "2001:db8::ab:cd", port: 65535 } },
    { id: b(ID_B), address: { host: "::ffff:7f00:1", port: 80 } },
  ];
  await t.step("IPv4", () => {
    const bytes = encodeCompactNodes(n4, 4);
    assertEquals(bytes, b(ID_A + v4("127.0.0.1", 6881) + ID_B + v4("255.255.255.255", 1)));
    assertEquals(bytes.length, 2 * COMPACT_NODE_V4_BYTES);
    assertEquals(decodeCompactNodes(bytes, 4), n4);
  });
  await t.step("IPv6", () => {
    const bytes = encodeCompactNodes(n6, 6);
    assertEquals(bytes.length, 3 * COMPACT_NODE_V6_BYTES);
    assertEquals(decodeCompactNodes(bytes, 6), n6);
  });
  await t.step("an IPv4-mapped host written in dotted form comes back in hex groups", () => {
    const bytes = encodeCompactNodes([{ id: b(ID_A), address: { host: "::ffff:127.0.0.1", port: 1 } }], 6);
    assertEquals(decodeCompactNodes(bytes, 6)[0].address, { host: "::ffff:7f00:1", port: 1 });
  });
  await t.step("empty", () => {
    assertEquals(encodeCompactNodes([], 6), new Uint8Array());
    assertEquals(decodeCompactNodes(new Uint8Array(), 4), []);
  });
});

Deno.test("decodeCompactNodes() bounds the count by max and names the path in errors", () => {
  const bytes = b(nodes4(MAX_KRPC_NODES + 4));
  assertEquals(decodeCompactNodes(bytes, 4, { max: 100 }).length, MAX_KRPC_NODES + 4);
  const many = assertThrows(() => decodeCompactNodes(bytes, 4), DhtError);
  assertEquals([many.code, many.path], ["too-many", ""]);
  const odd = assertThrows(() => decodeCompactNodes(bytes.subarray(1), 4, { path: "nodes" }), DhtError);
  assertEquals([odd.code, odd.path], ["bad-length", "nodes"]);
  const six = assertThrows(() => decodeCompactNodes(new Uint8Array(26), 6), DhtError);
  assertEquals(six.code, "bad-length");
  const zero = assertThrows(() => decodeCompactNodes(new Uint8Array(38), 6, { path: "n" }), DhtError);
  assertEquals([zero.code, zero.path], ["bad-port", "n[0]"]);
});

Deno.test("decodeCompactPeer() and encodeCompactPeer() read and write 6 and 18 bytes", async (t) => {
  const rows: { peer: PeerAddress; bytes: string }[] = [
    { peer: { host: "127.0.0.1", port: 6881 }, bytes: v4("127.0.0.1", 6881) },
    { peer: { host: "0.0.0.0", port: 65535 }, bytes: v4("0.0.0.0", 65535) },
    { peer: { host: "::1", port: 1 }, bytes: v6(LOOP6, 1) },
    { peer: { host: "2001:db8::ab:cd", port: 51413 }, bytes: v6(DOC6, 51413) },
  ];
  for (const row of rows) {
    await t.step(`${row.peer.host} ${row.peer.port}`, () => {
      assertEquals(encodeCompactPeer(row.peer), b(row.bytes));
      assertEquals(decodeCompactPeer(b(row.bytes)), row.peer);
    });
  }
  await t.step("other sizes and port 0 are refused", () => {
    for (const n of [0, 5, 7, 12, 17, 19, 26]) {
      assertEquals(assertThrows(() => decodeCompactPeer(new Uint8Array(n).fill(1), "x"), DhtError).code, "bad-length");
    }
    assertEquals(assertThrows(() => decodeCompactPeer(b(v4("1.2.3.4", 0))), DhtError).code, "bad-port");
  });
  await t.step("host names and bad ports cannot be encoded", () => {
    for (const p of [{ host: "example.org", port: 1 }, { host: "1.2.3.4", port: 0 }, { host: "::1", port: 70000 }]) {
      assertThrows(() => encodeCompactPeer(p), RangeError);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Round trip on generated messages

Deno.test("decodeKrpc() inverts encodeKrpc() on generated messages, and the bytes are canonical", () => {
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? "1");
  const rand = seeded(seed);
  let checked = 0;
  for (let i = 0; i < 3000; i++) {
    const m = genKrpc(rand);
    let bytes: Uint8Array;
    try {
      bytes = encodeKrpc(m);
    } catch (e) {
      // only a message too big for one packet may be refused
      assert(e instanceof RangeError && /packet limit/.test(e.message), `seed ${seed} #${i}: ${e}`);
      continue;
    }
    assertEquals(decodeKrpc(bytes), m, `seed ${seed} #${i}`);
    assertEquals(encodeKrpc(decodeKrpc(bytes)), bytes, `seed ${seed} #${i}`);
    checked++;
  }
  assert(checked > 2500, `only ${checked} generated messages fit a packet`);
});

Deno.test("encodeKrpc() agrees with the npm bencode package (oracle) on generated messages", () => {
  const rand = seeded(7);
  for (let i = 0; i < 300; i++) {
    const m = genKrpc(rand);
    let bytes: Uint8Array;
    try {
      bytes = encodeKrpc(m);
    } catch {
      continue;
    }
    // npm's decode then encode re-sorts keys and re-writes lengths: equal bytes mean ours are canonical bencode
    const again = npmBencode.encode(npmBencode.decode(bytes));
    assertEquals(new Uint8Array(again), bytes, `seed 7 #${i}`);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Packets captured from libtorrent 2.0.8 on loopback (tests/fixtures/krpc/capture.py)

const FIXTURES = new URL("../fixtures/krpc/", import.meta.url);
const LT_VERSION = b("LT\x02\x08");
const OUR_ID = new Uint8Array(20).map((_, i) => 0x40 + i); // the capturing node's id
const PEER_ID = new Uint8Array(20).map((_, i) => 0x60 + i); // its second node, which libtorrent lists
const INFO_HASH = b("\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67");

/** Keys libtorrent sends that decodeKrpc does not read, by path: removed before comparing with our re-encoding. */
const UNREAD: string[][] = [["r", "p"], ["a", "seed"], ["r", "interval"], ["r", "num"], ["r", "samples"]];

function withoutUnread(packet: Uint8Array): Uint8Array {
  // the npm bencode package is the oracle here: it re-encodes the packet minus the keys we ignore
  const top = npmBencode.decode(packet) as Record<string, Record<string, unknown>>;
  for (const [outer, inner] of UNREAD) if (top[outer]) delete top[outer][inner];
  if (new TextDecoder().decode(top.y as unknown as Uint8Array) === "e") {
    delete top.r; // libtorrent's errors carry r.id and ip as well; KrpcErrorReply keeps neither
    delete top.ip;
  }
  return new Uint8Array(npmBencode.encode(top));
}

const captured: { file: string; check: (m: KrpcMessage) => void }[] = [
  {
    file: "lt_get_peers_query.bin",
    check: (m) => {
      assert(m.y === "q" && m.q === "get_peers" && m.id.length === 20 && m.infoHash.length === 20);
      assertEquals([m.t.length, m.want, m.ro], [2, undefined, undefined]);
    },
  },
  {
    file: "lt_get_peers_query_v6.bin",
    check: (m) => assert(m.y === "q" && m.q === "get_peers" && m.want === undefined),
  },
  {
    file: "lt_announce_peer_query.bin",
    check: (m) => {
      assert(m.y === "q" && m.q === "announce_peer");
      assertEquals([m.infoHash, m.impliedPort, m.token], [INFO_HASH, true, b("tokn")]);
      assert(m.port >= 1 && m.port <= 65535);
    },
  },
  {
    file: "lt_announce_peer_query_v6.bin",
    check: (m) => assert(m.y === "q" && m.q === "announce_peer" && m.impliedPort === true),
  },
  {
    file: "lt_ping_response.bin",
    check: (m) => {
      assert(m.y === "r" && m.ip?.host === "127.0.0.1" && m.id.length === 20);
      assertEquals([m.t, m.nodes, m.values, m.token], [b("p1"), undefined, undefined, undefined]);
    },
  },
  {
    file: "lt_find_node_response.bin",
    check: (m) => {
      assert(m.y === "r" && m.ip?.host === "127.0.0.1");
      assertEquals(m.t, b("f1"));
      assertEquals(m.nodes?.map((n) => [n.id, n.address.host]), [[OUR_ID, "127.0.0.1"], [PEER_ID, "127.0.0.1"]]);
      assertEquals(m.nodes6?.map((n) => [n.id, n.address.host]), [[OUR_ID, "::1"], [PEER_ID, "::1"]]);
    },
  },
  {
    file: "lt_find_node_v6_response.bin",
    check: (m) => {
      assert(m.y === "r" && m.ip?.host === "::1");
      assertEquals([m.t, m.nodes?.length, m.nodes6?.length], [b("f6"), 2, 2]);
    },
  },
  {
    file: "lt_get_peers_response.bin",
    check: (m) => {
      assert(m.y === "r" && m.token?.length === 4 && m.values === undefined);
      assertEquals([m.t, m.nodes?.length, m.nodes6], [b("g1"), 2, undefined]);
    },
  },
  {
    file: "lt_get_peers_values_response.bin",
    check: (m) => {
      assert(m.y === "r" && m.token?.length === 4);
      assertEquals([m.t, m.values], [b("g2"), [{ host: "127.0.0.1", port: 6881 }]]);
    },
  },
  {
    file: "lt_announce_peer_response.bin",
    check: (m) => assert(m.y === "r" && m.nodes === undefined && m.ip?.host === "127.0.0.1"),
  },
  {
    file: "lt_sample_infohashes_response.bin",
    check: (m) => assert(m.y === "r" && m.nodes?.length === 2),
  },
  {
    // libtorrent answers a method it does not know with 203, not BEP 5's 204
    file: "lt_unknown_method_error.bin",
    check: (m) => assertEquals(m, { y: "e", t: b("u1"), v: LT_VERSION, code: 203, message: "unknown message" }),
  },
  {
    file: "lt_protocol_error.bin",
    check: (m) => assertEquals(m, { y: "e", t: b("e1"), v: LT_VERSION, code: 203, message: "missing 'info_hash' key" }),
  },
];

Deno.test("decodeKrpc() reads packets captured from libtorrent, and re-encodes what it read byte for byte", async (t) => {
  for (const row of captured) {
    await t.step(row.file, async () => {
      const packet = await Deno.readFile(new URL(row.file, FIXTURES));
      const m = decodeKrpc(packet);
      assertEquals(m.v, LT_VERSION);
      row.check(m);
      assertEquals(encodeKrpc(m), withoutUnread(packet));
      assertEquals(decodeKrpc(encodeKrpc(m)), m);
    });
  }
});
