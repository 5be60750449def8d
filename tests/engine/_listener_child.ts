/**
 * A listener in a process of its own, for tests that limit its descriptors (`ulimit -n`) and watch its CPU time.
 * Usage: `deno run -A _listener_child.ts <info-hash hex> <log file>`. Appends `port <n>` to the log, then
 * `error <code> <errno>` for each error reported and `routed` for each handshake routed to the info-hash; exits when
 * stdin closes.
 *
 * Deno 2.9 installs its SIGHUP and SIGTERM handlers about half a second after start, and that needs a new descriptor
 * (a socket pair): if they are all taken by then, Deno panics. So the listener opens only once the handlers are in
 * place (bit 15, SIGTERM, of `SigCgt` in /proc/self/status); and the log is a file opened at once, needing nothing new.
 * @module
 */
import { Listener } from "../../lib/engine/listener.ts";

const [hex = "", logPath = "/dev/stdout"] = Deno.args;
const sigterm = 1n << 14n;
for (let waited = 0; waited < 5000; waited += 20) {
  const cgt = /SigCgt:\s*([0-9a-f]+)/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1] ?? "0";
  if ((BigInt("0x" + cgt) & sigterm) !== 0n) break;
  await new Promise((r) => setTimeout(r, 20));
}
const log = Deno.openSync(logPath, { write: true, create: true, append: true });
const say = (line: string) => log.writeSync(new TextEncoder().encode(line + "\n"));
const l = Listener.open(0, {
  onError: (e) => say(`error ${e.code} ${(e.cause as { code?: string } | undefined)?.code ?? "-"}`),
});
l.register(hex, (conn) => {
  say("routed");
  conn.close();
  return true;
});
say(`port ${l.port}`);
for await (const _ of Deno.stdin.readable) { /* run until the parent closes stdin */ }
await l.close();
log.close();
