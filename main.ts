/**
 * btfetch: fetch and seed BitTorrent content from the command line. See `btfetch --help`.
 * @module
 */
import { main } from "./lib/cli/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
