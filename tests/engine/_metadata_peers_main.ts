/**
 * Runs hostile {@linkcode metadataPeer}s in a process of their own, so a test can measure the memory of a metadata
 * fetch without counting what its fake peers allocate to send. Arguments: the info-hash in hex, then a JSON array of
 * the peers' options (without `infoHash` and `info`; none of them serves the true info). Prints the peers' ports as
 * one JSON line, then runs until its standard input closes, or 60 s at most.
 * @module
 */
import { FakePeer } from "./_fake_peer.ts";
import { metadataPeer, type MetadataPeerOptions } from "./_metadata_peer.ts";

if (import.meta.main) {
  const [hex, json] = Deno.args;
  const infoHash = new Uint8Array(hex.match(/../g)!.map((b) => parseInt(b, 16)));
  const opts = JSON.parse(json) as Omit<MetadataPeerOptions, "infoHash" | "info">[];
  const peers = opts.map((o) => new FakePeer(metadataPeer({ infoHash, info: new Uint8Array(0), ...o })));
  console.log(JSON.stringify(peers.map((p) => p.port)));
  const limit = setTimeout(() => Deno.exit(3), 60_000);
  for await (const _ of Deno.stdin.readable) { /* until the test closes our stdin */ }
  clearTimeout(limit);
  for (const p of peers) await p.close();
}
