/**
 * Debian's nginx (nginx-light) as a web seed for the interop tests: one process (`master_process off`, not a daemon)
 * on a free 127.0.0.1 port serving a folder, with its config, pid file, temp folders and logs in a temp dir of its
 * own. nginx answers `Range` with `206` by default. The access log records every request (path, status, `Range`,
 * body bytes sent) so a test can check what was asked. Every wait is bounded; `close()` kills it and removes the dir.
 * @module
 */
import { freePort, LineProcess, sleep } from "./_peers.ts";

/** Where Debian puts the binary (`.ci/run` installs nginx-light). */
export const NGINX_BIN = "/usr/sbin/nginx";

/** One line of the access log. */
export interface NginxHit {
  /** The request path as sent (percent-encoded). */
  readonly path: string;
  readonly method: string;
  readonly status: number;
  /** The `Range` header, or "" without one. */
  readonly range: string;
  /** Body bytes sent. */
  readonly bytes: number;
}

/** A running nginx. */
export interface Nginx {
  readonly port: number;
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  readonly origin: string;
  /** The access log so far, parsed. */
  hits(): Promise<NginxHit[]>;
  close(): Promise<void>;
}

/** Whether nginx can be run here. */
export function haveNginx(): boolean {
  try {
    return Deno.statSync(NGINX_BIN).isFile;
  } catch {
    return false;
  }
}

/** Options of {@linkcode startNginx}. */
export interface NginxOptions {
  /** Kill it if it is not accepting connections after this long; default 10 s. */
  readonly timeoutMs?: number;
}

function config(dir: string, root: string, port: number): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  log_format hits '$request_method\\t$request_uri\\t$status\\t$http_range\\t$body_bytes_sent';
  access_log ${dir}/access.log hits;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  types { }
  default_type application/octet-stream;
  sendfile on;
  keepalive_requests 10000;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    autoindex off;
  }
}
`;
}

async function answers(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts nginx serving `root` on a free loopback port; resolves once it accepts connections. A port taken by someone
 * else between choosing and binding it is retried with a new one.
 */
export async function startNginx(root: string, o: NginxOptions = {}): Promise<Nginx> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const dir = await Deno.makeTempDir({ prefix: "btfetch-nginx-" });
  let lastErr = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = freePort();
    await Deno.writeTextFile(`${dir}/nginx.conf`, config(dir, root, port));
    const proc = new LineProcess("nginx", NGINX_BIN, ["-p", dir, "-e", `${dir}/error.log`, "-c", `${dir}/nginx.conf`]);
    const deadline = Date.now() + timeoutMs;
    while (!proc.exited && Date.now() < deadline && !(await answers(port))) await sleep(50);
    if (!proc.exited && await answers(port)) {
      const origin = `http://127.0.0.1:${port}`;
      return {
        port,
        origin,
        async hits() {
          const text = await Deno.readTextFile(`${dir}/access.log`).catch(() => "");
          return text.split("\n").filter((l) => l !== "").map(parseHit);
        },
        async close() {
          await proc.close();
          await Deno.remove(dir, { recursive: true }).catch(() => {});
        },
      };
    }
    const log = await Deno.readTextFile(`${dir}/error.log`).catch(() => "");
    lastErr = `${proc.tail()}\n--- error.log ---\n${log}`;
    await proc.close();
    if (!/address already in use/i.test(log)) break;
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  throw new Error(`nginx did not start\n${lastErr}`);
}

function parseHit(line: string): NginxHit {
  const [method, path, status, range, bytes] = line.split("\t");
  return { method, path, status: Number(status), range: range === "-" ? "" : range, bytes: Number(bytes) };
}
