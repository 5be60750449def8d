/**
 * A loopback DHT of npm `bittorrent-dht` nodes (a second DHT implementation, webtorrent's) for the DHT interop tests,
 * run as its own Deno process:
 *
 *   deno run -A tests/interop/_npm_dht.ts --nodes N [--add-node HOST:PORT]...
 *
 * Starts N nodes on 127.0.0.1 with `bootstrap: false` (never the public routers), tells each of the others (and of
 * each --add-node) with `addNode`, and prints, one a line:
 *   NODE <port>                             each node's UDP port, as it listens
 *   READY                                   once every node's routing table holds the other N-1 and the --add-nodes
 *   ANNOUNCE-IN <info-hash> <ip>:<port>     a node stored an announce_peer (its token checked)
 *   PEER <info-hash> <ip>:<port>            a lookup found a peer (each once)
 *   LOOKUP-DONE <info-hash> <nodes>         a lookup ended, having heard from that many nodes
 *   ANNOUNCED <info-hash> <port>            an announce (a lookup, then announce_peer to the closest) ended
 *   ERROR <text>                            then exits 2
 * Commands on stdin, one a line: `LOOKUP <node index> <info-hash hex>`, `ANNOUNCE <node index> <info-hash hex> <port>`.
 * Exits when stdin closes or on SIGTERM.
 * @module
 */
import DHT from "bittorrent-dht";

/** How long the nodes may take to know each other. */
const READY_TIMEOUT_MS = 10_000;

/** The part of a `bittorrent-dht` node used here (the package ships no types). */
interface NpmDhtNode {
  listen(port: number, host: string, cb: () => void): void;
  address(): { port: number };
  addNode(node: { host: string; port: number }): void;
  lookup(infoHash: string, cb: (err: Error | null, nodes: number) => void): void;
  announce(infoHash: string, port: number, cb: (err: Error | null) => void): void;
  destroy(cb?: () => void): void;
  on(event: "announce", cb: (peer: { host: string; port: number }, infoHash: Uint8Array) => void): void;
  on(event: "peer", cb: (peer: { host: string; port: number }, infoHash: Uint8Array) => void): void;
  on(event: "error" | "warning", cb: (err: Error) => void): void;
  readonly nodes: { count(): number };
}

function out(line: string): void {
  console.log(line);
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function parseArgs(argv: string[]): { nodes: number; addNodes: Array<{ host: string; port: number }> } {
  let nodes = 0;
  const addNodes: Array<{ host: string; port: number }> = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--nodes") nodes = Number(argv[++i]);
    else if (argv[i] === "--add-node") {
      const [host, port] = [argv[i + 1].slice(0, argv[i + 1].lastIndexOf(":")), argv[i + 1].split(":").pop()];
      addNodes.push({ host, port: Number(port) });
      i++;
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error("--nodes N (N >= 1) is required");
  return { nodes, addNodes };
}

async function main(): Promise<number> {
  const { nodes: n, addNodes } = parseArgs(Deno.args);
  const nodes: NpmDhtNode[] = [];
  const close = () => Promise.all(nodes.map((d) => new Promise<void>((r) => d.destroy(() => r()))));
  try {
    for (let i = 0; i < n; i++) {
      const d = new DHT({ bootstrap: false }) as unknown as NpmDhtNode;
      nodes.push(d);
      d.on("error", (e) => out(`ERROR node ${i}: ${e.message}`));
      d.on("warning", () => {}); // a query that timed out: normal
      d.on("announce", (peer, ih) => out(`ANNOUNCE-IN ${hex(ih)} ${peer.host}:${peer.port}`));
      await new Promise<void>((r) => d.listen(0, "127.0.0.1", r));
      out(`NODE ${d.address().port}`);
    }
    const ports = nodes.map((d) => d.address().port);
    for (const d of nodes) {
      for (const p of ports) if (p !== d.address().port) d.addNode({ host: "127.0.0.1", port: p });
      for (const a of addNodes) d.addNode(a);
    }
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (nodes.some((d) => d.nodes.count() < n - 1 + addNodes.length)) {
      if (Date.now() > deadline) {
        out(`ERROR routing tables not filled after ${READY_TIMEOUT_MS} ms: ${nodes.map((d) => d.nodes.count())}`);
        return 2;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    out("READY");

    const seen = new Set<string>();
    for (const d of nodes) {
      d.on("peer", (peer, ih) => {
        const line = `PEER ${hex(ih)} ${peer.host}:${peer.port}`;
        if (!seen.has(line)) out(line);
        seen.add(line);
      });
    }
    let buf = "";
    const stop = new Promise<void>((resolve) => {
      try {
        Deno.addSignalListener("SIGTERM", () => resolve());
      } catch { /* no signals here: stdin's end still stops us */ }
    });
    const reading = (async () => {
      for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i).trim();
          const [cmd, idx, ih, port] = line.split(/\s+/);
          buf = buf.slice(i + 1);
          const d = nodes[Number(idx)];
          if (d === undefined || !/^[0-9a-f]{40}$/.test(ih ?? "")) out(`ERROR bad command ${JSON.stringify(line)}`);
          else if (cmd === "LOOKUP") {
            d.lookup(ih, (err, visited) => out(err ? `ERROR lookup: ${err.message}` : `LOOKUP-DONE ${ih} ${visited}`));
          } else if (cmd === "ANNOUNCE" && Number(port) > 0 && Number(port) < 65536) {
            d.announce(
              ih,
              Number(port),
              (err) => out(err ? `ERROR announce: ${err.message}` : `ANNOUNCED ${ih} ${port}`),
            );
          } else out(`ERROR bad command ${JSON.stringify(line)}`);
        }
      }
    })();
    await Promise.race([reading, stop]);
    return 0;
  } finally {
    await close();
  }
}

try {
  Deno.exit(await main());
} catch (e) {
  out(`ERROR ${e instanceof Error ? e.message : String(e)}`);
  Deno.exit(2);
}
