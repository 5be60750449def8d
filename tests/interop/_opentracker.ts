/**
 * Starts Debian's opentracker on free loopback ports for interop tests.
 *
 * Debian's build is whitelist-only: the config names `access.whitelist /whitelist.txt`, a path inside the `-d` DIR it
 * chroots into, one hex info-hash a line. Run as root it drops to `nobody`, so DIR and its files are world-readable.
 * Ports come from binding port 0 and releasing it; if another process takes one before opentracker binds it, the start
 * is retried on new ports. Every wait is bounded.
 * @module
 */

/** Where the binary is expected. */
export const OPENTRACKER_BIN = "/usr/bin/opentracker";

/** A running opentracker. `close` kills it and removes its directory. */
export interface Opentracker {
  readonly httpUrl: string;
  readonly udpUrl: string;
  close(): Promise<void>;
}

/** Null when opentracker can be run, else why not. */
export function opentrackerMissing(): string | null {
  try {
    const st = Deno.statSync(OPENTRACKER_BIN);
    return st.isFile ? null : `${OPENTRACKER_BIN} is not a file`;
  } catch {
    return `${OPENTRACKER_BIN} is not installed (apt-get install opentracker)`;
  }
}

/**
 * Registers an interop test that needs opentracker: it fails when the binary is missing and CI=true, and is
 * ignored with a message otherwise.
 */
export function opentrackerTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  const missing = opentrackerMissing();
  if (missing && Deno.env.get("CI") !== "true") {
    Deno.test({ name: `${name} (skipped: ${missing})`, ignore: true, fn: () => {} });
    return;
  }
  Deno.test(name, async (t) => {
    if (missing) throw new Error(`opentracker is required on CI: ${missing}`);
    await fn(t);
  });
}

function freePorts(): { tcp: number; udp: number } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const u = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const ports = { tcp: (l.addr as Deno.NetAddr).port, udp: (u.addr as Deno.NetAddr).port };
  l.close();
  u.close();
  return ports;
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

async function tcpAnswers(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** Sends a BEP 15 connect and waits up to `ms` for the matching reply. */
async function udpAnswers(port: number, ms: number): Promise<boolean> {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const req = new Uint8Array(16);
  const v = new DataView(req.buffer);
  v.setBigUint64(0, 0x41727101980n);
  v.setUint32(12, 0x5eed);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const recv = sock.receive().then(
    ([b]) => b.length >= 16 && new DataView(b.buffer, b.byteOffset).getUint32(4) === 0x5eed,
    () => false,
  );
  try {
    await sock.send(req, { transport: "udp", hostname: "127.0.0.1", port });
    return await Promise.race([recv, new Promise<boolean>((res) => timer = setTimeout(() => res(false), ms))]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    sock.close();
    await recv;
  }
}

async function drain(stream: ReadableStream<Uint8Array>, sink: string[]): Promise<void> {
  const dec = new TextDecoder();
  let size = 0;
  for await (const chunk of stream) {
    if (size < 64 * 1024) sink.push(dec.decode(chunk, { stream: true }));
    size += chunk.length;
  }
}

async function startOnce(dir: string): Promise<Opentracker | string> {
  const { tcp, udp } = freePorts();
  const child = new Deno.Command(OPENTRACKER_BIN, {
    args: ["-i", "127.0.0.1", "-p", String(tcp), "-P", String(udp), "-f", `${dir}/opentracker.conf`, "-d", dir],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  const pipes = Promise.all([drain(child.stdout, log), drain(child.stderr, log)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stop = async (): Promise<void> => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, 2000);
      await status;
      clearTimeout(t);
    }
    await pipes;
  };
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline && !exited) {
    if (await tcpAnswers(tcp) && await udpAnswers(udp, 300)) {
      return {
        httpUrl: `http://127.0.0.1:${tcp}/announce`,
        udpUrl: `udp://127.0.0.1:${udp}/announce`,
        close: stop,
      };
    }
    await sleep(50);
  }
  await stop();
  return `opentracker did not answer on tcp ${tcp} / udp ${udp} within 5 s (exited: ${exited}): ${log.join("").trim()}`;
}

/**
 * Starts opentracker on 127.0.0.1 with `infoHashesHex` whitelisted; resolves once both its HTTP and UDP ports
 * answer.
 * @throws {Error} when it cannot be started after three tries (the message carries its output).
 */
export async function startOpentracker(infoHashesHex: string[]): Promise<Opentracker> {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-opentracker-" });
  await Deno.chmod(dir, 0o755);
  await Deno.writeTextFile(`${dir}/whitelist.txt`, infoHashesHex.map((h) => h.toLowerCase() + "\n").join(""));
  await Deno.writeTextFile(`${dir}/opentracker.conf`, "access.whitelist /whitelist.txt\n");
  await Deno.chmod(`${dir}/whitelist.txt`, 0o644);
  await Deno.chmod(`${dir}/opentracker.conf`, 0o644);
  const cleanup = (): Promise<void> => Deno.remove(dir, { recursive: true }).catch(() => {});
  let why = "";
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const r = await startOnce(dir);
      if (typeof r !== "string") {
        return {
          httpUrl: r.httpUrl,
          udpUrl: r.udpUrl,
          async close() {
            await r.close();
            await cleanup();
          },
        };
      }
      why = r;
    }
  } catch (e) {
    await cleanup();
    throw e;
  }
  await cleanup();
  throw new Error(`Cannot start opentracker: ${why}`);
}
