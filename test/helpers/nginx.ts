/**
 * A real nginx (Debian's package; `.ci/run` installs it) in front of test
 * nodes, running the project's load-balancer configuration, deploy/nginx.conf.
 * That file is the `http { }` part docker compose mounts; here it is included
 * by a small main configuration of the test's own (pid, logs and temporary
 * directories under a temporary prefix), with only its `listen 80;` and its
 * `server node1:3000` / `server node2:3000` upstream lines replaced. nginx runs
 * unprivileged (as `nobody` when the tests run as root), in the foreground, on
 * a free high port of 127.0.0.1.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../server/db/embedded';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** The load-balancer configuration docker-compose.yml mounts into its nginx. */
export const NGINX_CONF = path.join(ROOT, 'deploy/nginx.conf');

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

/** The nginx binary: $NGINX, else Debian's /usr/sbin/nginx, else `nginx` on PATH. */
export function nginxBinary(): string {
  if (process.env.NGINX) return process.env.NGINX;
  return existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
}

function replaceExactly(text: string, from: string, to: string, times: number): string {
  const found = text.split(from).length - 1;
  if (found !== times) throw new Error(`deploy/nginx.conf: expected ${times} × "${from}", found ${found}`);
  return text.split(from).join(to);
}

/**
 * deploy/nginx.conf with its listen address and its two upstream nodes
 * replaced (`host:port` each); every other line stays as written.
 */
export function renderLoadBalancerConf(source: string, listen: string, nodes: [string, string]): string {
  let conf = replaceExactly(source, 'listen 80;', `listen ${listen};`, 1);
  conf = replaceExactly(conf, 'server node1:3000 ', `server ${nodes[0]} `, 2);
  conf = replaceExactly(conf, 'server node2:3000 ', `server ${nodes[1]} `, 2);
  const left = /server\s+node\d+:\d+/.exec(conf);
  if (left) throw new Error(`deploy/nginx.conf: upstream "${left[0]}" has no test address (the test runs two nodes)`);
  return conf;
}

export interface NginxProcess {
  port: number;
  /** http://127.0.0.1:<port> */
  url: string;
  /** nginx's stderr (its error log) so far. */
  output(): string;
  /** The access log: `<client> "<request>" <status> -> <upstream>` per line. */
  accessLog(): Promise<string>;
  stop(): Promise<void>;
}

function status(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts nginx with deploy/nginx.conf in front of `nodes` (`host:port` each); resolves once it answers /nginx-health. */
export async function startNginx(nodes: [string, string]): Promise<NginxProcess> {
  const source = await readFile(NGINX_CONF, 'utf8');
  let lastError: unknown;
  // A free port can be taken by someone else before nginx binds it: try another.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(source, nodes, await freePort());
    } catch (err) {
      lastError = err;
      if (!String(err).includes('Address already in use')) throw err;
    }
  }
  throw lastError;
}

async function startOnce(source: string, nodes: [string, string], port: number): Promise<NginxProcess> {
  const prefix = await mkdtemp(path.join(os.tmpdir(), 'slotwise-nginx-'));
  for (const dir of ['logs', 'client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(path.join(prefix, dir));
  await writeFile(path.join(prefix, 'slotwise.conf'), renderLoadBalancerConf(source, `127.0.0.1:${port}`, nodes));
  await writeFile(
    path.join(prefix, 'nginx.conf'),
    [
      'worker_processes 1;',
      `pid ${prefix}/nginx.pid;`,
      'error_log stderr warn;',
      'events { worker_connections 1024; }',
      'http {',
      `  log_format lb '$remote_addr "$request" $status -> $upstream_addr';`,
      `  access_log ${prefix}/logs/access.log lb;`,
      `  client_body_temp_path ${prefix}/client_body;`,
      `  proxy_temp_path ${prefix}/proxy;`,
      `  fastcgi_temp_path ${prefix}/fastcgi;`,
      `  uwsgi_temp_path ${prefix}/uwsgi;`,
      `  scgi_temp_path ${prefix}/scgi;`,
      `  include ${prefix}/slotwise.conf;`,
      '}',
      '',
    ].join('\n'),
  );
  // As root, nginx itself runs as `nobody`: the prefix becomes theirs.
  let ids: { uid?: number; gid?: number } = {};
  if (process.getuid?.() === 0) {
    ids = { uid: Number(execFileSync('id', ['-u', 'nobody'])), gid: Number(execFileSync('id', ['-g', 'nobody'])) };
    const own = async (p: string) => {
      await chown(p, ids.uid!, ids.gid!);
      for (const e of await readdir(p, { withFileTypes: true })) {
        if (e.isDirectory()) await own(path.join(p, e.name));
        else await chown(path.join(p, e.name), ids.uid!, ids.gid!);
      }
    };
    await own(prefix);
  }
  const proc = spawn(nginxBinary(), ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-e', 'stderr', '-g', 'daemon off;'], {
    ...ids,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => (running.delete(proc), resolve())));
  proc.once('error', (err) => (out += `spawn failed: ${err.message}\n`));
  const url = `http://127.0.0.1:${port}`;
  const cleanUp = () => rm(prefix, { recursive: true, force: true });
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null || out.includes('spawn failed')) {
      await cleanUp();
      throw new Error(`nginx did not start (${nginxBinary()}; .ci/run installs Debian's nginx-light):\n${out}`);
    }
    if ((await status(`${url}/nginx-health`)) === 200) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      await exited;
      await cleanUp();
      throw new Error(`nginx did not answer on ${url}:\n${out}`);
    }
    await sleep(50);
  }
  return {
    port,
    url,
    output: () => out,
    accessLog: () => readFile(path.join(prefix, 'logs/access.log'), 'utf8').catch(() => ''),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      await cleanUp();
    },
  };
}
