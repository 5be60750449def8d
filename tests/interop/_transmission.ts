/**
 * transmission-daemon driven by transmission-remote, as a downloader for the seeding interop tests.
 *
 * Quirks (Transmission 3.00): it treats tracker and PEX peers in 127.0.0.0/8 as martians and keeps one peer per IP, so
 * on loopback it only trades with a peer that connects to it (`btfetch seed --peer 127.0.0.1:<peerPort>`); it starts
 * requesting about 10 s after that connection. transmission-cli does not start torrents reliably, hence the daemon.
 * The daemon runs in the foreground (`-f`) with a config folder of its own (`-g`), whose settings.json turns off DHT,
 * LPD, PEX, uTP and port forwarding, binds peers and RPC to 127.0.0.1, and needs no RPC authentication.
 * @module
 */
import { freePort, LineProcess, sleep } from "./_peers.ts";

/** The state of one torrent, from `transmission-remote -t ID -i`. */
export interface TransmissionInfo {
  /** "Percent Done", 0..100. */
  percent: number;
  /** "State" (Idle, Downloading, Seeding, Stopped, ...). */
  state: string;
  /** The whole `-i` text, for diagnostics. */
  raw: string;
}

/** A running transmission-daemon. */
export interface Transmission {
  /** Its BitTorrent port on 127.0.0.1 (where a seeder must connect). */
  readonly peerPort: number;
  readonly rpcPort: number;
  readonly downloadDir: string;
  readonly proc: LineProcess;
  /** Runs `transmission-remote 127.0.0.1:<rpcPort> ARGS`; throws when it fails. Returns stdout. */
  remote(...args: string[]): Promise<string>;
  /** Adds a .torrent (started at once) and returns its id. */
  add(torrentPath: string): Promise<number>;
  info(id: number): Promise<TransmissionInfo>;
  /** Polls `info(id)` every 500 ms until 100% done; throws after `timeoutMs` (with the last info). */
  waitComplete(id: number, timeoutMs: number, alive?: () => void): Promise<TransmissionInfo>;
  /** Stops the torrent (`-S`), so its files are flushed and closed. */
  stop(id: number): Promise<void>;
  /** Stops the daemon (bounded) and removes its config folder. */
  close(): Promise<void>;
}

const REMOTE_TIMEOUT_MS = 10_000;

async function runRemote(rpcPort: number, args: string[]): Promise<string> {
  const cmd = new Deno.Command("transmission-remote", {
    args: [`127.0.0.1:${rpcPort}`, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(REMOTE_TIMEOUT_MS),
  });
  const r = await cmd.output();
  const out = new TextDecoder().decode(r.stdout);
  if (!r.success) {
    throw new Error(`transmission-remote ${args.join(" ")} failed: ${out}${new TextDecoder().decode(r.stderr)}`);
  }
  return out;
}

/** Parses `transmission-remote -t ID -i` output. */
export function parseInfo(raw: string): TransmissionInfo {
  const pct = raw.match(/^\s*Percent Done:\s*([\d.]+)%/m);
  const state = raw.match(/^\s*State:\s*(.+)$/m);
  return { percent: pct ? Number(pct[1]) : NaN, state: state ? state[1].trim() : "", raw };
}

/**
 * Starts `transmission-daemon -f -g <config>` on free loopback ports, downloading into `downloadDir`; resolves once
 * its RPC answers.
 */
export async function startTransmission(opts: { downloadDir: string; timeoutMs?: number }): Promise<Transmission> {
  const configDir = await Deno.makeTempDir({ prefix: "btfetch-transmission-" });
  const peerPort = freePort();
  const rpcPort = freePort();
  const settings = {
    "dht-enabled": false,
    "lpd-enabled": false,
    "pex-enabled": false,
    "utp-enabled": false,
    "port-forwarding-enabled": false,
    "blocklist-enabled": false,
    "rpc-enabled": true,
    "rpc-bind-address": "127.0.0.1",
    "rpc-port": rpcPort,
    "rpc-authentication-required": false,
    "rpc-whitelist": "127.0.0.1",
    "rpc-whitelist-enabled": true,
    "rpc-host-whitelist-enabled": false,
    "peer-port": peerPort,
    "peer-port-random-on-start": false,
    "bind-address-ipv4": "127.0.0.1",
    "bind-address-ipv6": "::1",
    "download-dir": opts.downloadDir,
    "incomplete-dir-enabled": false,
    "watch-dir-enabled": false,
    "rename-partial-files": false,
    "start-added-torrents": true,
    // 0: prefer plain connections (btfetch has no MSE); plain ones are accepted either way unless this is 2.
    "encryption": 0,
    "speed-limit-down-enabled": false,
    "speed-limit-up-enabled": false,
    "alt-speed-enabled": false,
    "ratio-limit-enabled": false,
    "idle-seeding-limit-enabled": false,
    "download-queue-enabled": false,
    "seed-queue-enabled": false,
    "queue-stalled-enabled": false,
    "scrape-paused-torrents-enabled": false,
    "message-level": 2,
  };
  await Deno.writeTextFile(`${configDir}/settings.json`, JSON.stringify(settings, null, 2));
  const proc = new LineProcess("transmission-daemon", "transmission-daemon", ["-f", "-g", configDir]);
  const close = async () => {
    await proc.close(5000);
    await Deno.remove(configDir, { recursive: true }).catch(() => {});
  };
  const remote = (...args: string[]) => runRemote(rpcPort, args);
  try {
    const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
    while (true) {
      if (proc.exited) throw new Error(`transmission-daemon exited early\n${proc.tail()}`);
      try {
        await remote("-l");
        break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`transmission-daemon RPC did not answer: ${e}\n${proc.tail()}`);
      }
      await sleep(200);
    }
  } catch (e) {
    await close();
    throw e;
  }
  const info = async (id: number) => parseInfo(await remote("-t", String(id), "-i"));
  return {
    peerPort,
    rpcPort,
    downloadDir: opts.downloadDir,
    proc,
    remote,
    async add(torrentPath: string) {
      const before = new Set((await remote("-l")).match(/^\s+(\d+)\s/gm)?.map((s) => Number(s)) ?? []);
      await remote("-a", torrentPath);
      const after = (await remote("-l")).match(/^\s+(\d+)\s/gm)?.map((s) => Number(s)) ?? [];
      const id = after.find((n) => !before.has(n));
      if (id === undefined) throw new Error(`transmission did not list the added torrent\n${await remote("-l")}`);
      return id;
    },
    info,
    async waitComplete(id: number, timeoutMs: number, alive?: () => void) {
      const deadline = Date.now() + timeoutMs;
      let last: TransmissionInfo | undefined;
      while (true) {
        last = await info(id);
        if (last.percent >= 100) return last;
        if (proc.exited) throw new Error(`transmission-daemon exited\n${proc.tail()}`);
        alive?.();
        if (Date.now() > deadline) {
          throw new Error(`transmission did not complete within ${timeoutMs} ms; last info:\n${last.raw}`);
        }
        await sleep(500);
      }
    },
    async stop(id: number) {
      await remote("-t", String(id), "-S");
    },
    close,
  };
}
