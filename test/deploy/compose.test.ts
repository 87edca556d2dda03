/**
 * docker-compose.yml, the Dockerfile and .dockerignore, checked without Docker
 * (it does not run here): the services and their health checks, the
 * environment every node needs (validated by the server's own loadConfig),
 * what the nodes share and what each has of its own, Postgres with logical
 * decoding, nginx mounting deploy/nginx.conf whose upstreams are the node
 * services, and a multi-stage image that runs as an unprivileged user.
 * test/deploy/load-balancer.test.ts runs deploy/nginx.conf for real.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../server/config';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** Compose's variable interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$. */
function interpolate(value: unknown, env: Record<string, string>): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-|:?\?)([^}]*))?\}/g, (whole, name: string | undefined, op: string | undefined, arg: string | undefined) => {
      if (whole === '$$') return '$';
      const v = env[name!];
      const unset = v === undefined || (op?.startsWith(':') && v === '');
      if (op?.endsWith('-')) return unset ? arg! : v!;
      if (op?.endsWith('?') && unset) throw new Error(`compose: ${name} is required: ${arg}`);
      return v ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  return value;
}

type Service = Record<string, any>;
/** The compose file as Docker sees it with `env` in the shell (merge keys resolved, variables interpolated). */
function compose(env: Record<string, string> = {}): { services: Record<string, Service>; [k: string]: any } {
  return interpolate(parse(read('docker-compose.yml'), { merge: true }), env) as any;
}

const envOf = (s: Service): Record<string, string> =>
  Array.isArray(s.environment)
    ? Object.fromEntries(s.environment.map((e: string) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]))
    : Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
const healthTest = (s: Service) => (Array.isArray(s.healthcheck?.test) ? s.healthcheck.test.join(' ') : String(s.healthcheck?.test ?? ''));
const nodeNames = (c: ReturnType<typeof compose>) => Object.keys(c.services).filter((n) => c.services[n]!.build !== undefined);

describe('docker-compose.yml', () => {
  it('has Postgres, Redis, two Slotwise nodes built from the Dockerfile and nginx, each with a health check', () => {
    const c = compose();
    expect(Object.keys(c.services).sort()).toEqual(['nginx', 'node1', 'node2', 'postgres', 'redis']);
    expect(nodeNames(c)).toEqual(['node1', 'node2']);
    for (const name of nodeNames(c)) {
      const build = c.services[name]!.build;
      expect(build === '.' || (build.context === '.' && (build.dockerfile ?? 'Dockerfile') === 'Dockerfile')).toBe(true);
    }
    expect(c.services.postgres!.image).toMatch(/^postgres:\d+/);
    expect(c.services.redis!.image).toMatch(/^redis:\d+/);
    expect(c.services.nginx!.image).toMatch(/^nginx:/);
    for (const [name, s] of Object.entries(c.services)) {
      expect(healthTest(s), `${name} health check`).not.toBe('');
      expect(s.healthcheck.test[0], `${name} health check`).not.toBe('NONE');
      expect(s.healthcheck.disable ?? false).toBe(false);
    }
    expect(healthTest(c.services.postgres!)).toContain('pg_isready');
    expect(healthTest(c.services.redis!)).toContain('redis-cli ping');
    expect(healthTest(c.services.nginx!)).toContain('/nginx-health');
    expect(read('deploy/nginx.conf')).toMatch(/location = \/nginx-health \{[^}]*return 200/);
  });

  it('runs Postgres with logical decoding (the event feed reads the WAL through a replication slot)', () => {
    const command = compose().services.postgres!.command;
    const args = Array.isArray(command) ? command.join(' ') : String(command);
    expect(args).toMatch(/^postgres /);
    expect(args).toMatch(/-c wal_level=logical\b/);
    const slots = /-c max_replication_slots=(\d+)/.exec(args);
    if (slots) expect(Number(slots[1])).toBeGreaterThanOrEqual(1);
  });

  it('gives every node a configuration the server accepts: the shared Postgres and Redis, the same secrets, a NODE_ID of its own', () => {
    for (const shell of [{}, { ADMIN_TOKEN: 'compose-admin-token-0123456789', JWT_SECRET: 'compose-jwt-secret-0123456789-0123456789-ab', POSTGRES_PASSWORD: 's3cret' }] as Record<string, string>[]) {
      const c = compose(shell);
      const pgEnv = envOf(c.services.postgres!);
      const envs = nodeNames(c).map((n) => envOf(c.services[n]!));
      for (const env of envs) {
        const config = loadConfig(env);
        // Never the embedded Postgres inside compose: DATABASE_URL names the postgres service with its own credentials.
        const db = new URL(config.databaseUrl!);
        expect(db.protocol).toBe('postgres:');
        expect([db.hostname, db.port || '5432', decodeURIComponent(db.username), decodeURIComponent(db.password), db.pathname]).toEqual([
          'postgres', '5432', pgEnv.POSTGRES_USER, pgEnv.POSTGRES_PASSWORD, `/${pgEnv.POSTGRES_DB}`,
        ]);
        expect(decodeURIComponent(db.password)).toBe(shell.POSTGRES_PASSWORD ?? pgEnv.POSTGRES_PASSWORD);
        const redis = new URL(config.redisUrl!);
        expect([redis.protocol, redis.hostname]).toEqual(['redis:', 'redis']);
        // One proxy (nginx) in front of every node.
        expect(config.limits.trustProxy).toBe(1);
        expect(config.adminToken).toBe(shell.ADMIN_TOKEN);
        expect(config.jwtSecret).toBe(shell.JWT_SECRET);
        expect(env.NODE_ID).toBeTruthy();
      }
      // NODE_ID is each node's own; everything else is the same on every node.
      expect(new Set(envs.map((e) => e.NODE_ID)).size).toBe(envs.length);
      const shared = envs.map(({ NODE_ID: _, ...rest }) => rest);
      for (const e of shared) expect(e).toEqual(shared[0]);
    }
  });

  it('starts nodes once Postgres and Redis are healthy and nginx once the nodes are ready (/readyz)', () => {
    const c = compose();
    for (const name of nodeNames(c)) {
      const s = c.services[name]!;
      expect(s.depends_on).toMatchObject({ postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
      const port = envOf(s).PORT ?? '3000';
      expect(healthTest(s)).toContain(`127.0.0.1:${port}/readyz`);
      expect(s.stop_grace_period).toBeTruthy();
    }
    expect(c.services.nginx!.depends_on).toEqual(Object.fromEntries(nodeNames(c).map((n) => [n, { condition: 'service_healthy' }])));
  });

  it('mounts deploy/nginx.conf into nginx, whose upstreams are exactly the node services on their PORT', () => {
    const c = compose();
    const nginx = c.services.nginx!;
    const mounts = (nginx.volumes as (string | { source: string; target: string })[]).map((v) => (typeof v === 'string' ? v.split(':').slice(0, 2).join(':') : `${v.source}:${v.target}`));
    expect(mounts).toContain('./deploy/nginx.conf:/etc/nginx/conf.d/default.conf');
    expect((nginx.ports as string[]).some((p) => String(p).endsWith(':80'))).toBe(true);

    const conf = read('deploy/nginx.conf');
    expect(conf).toMatch(/^\s*listen 80;/m);
    const upstreams = [...conf.matchAll(/upstream (\w+) \{([^}]*)\}/g)];
    expect(upstreams.map((u) => u[1])).toEqual(['slotwise', 'slotwise_sticky']);
    const nodes = nodeNames(c).map((n) => `${n}:${envOf(c.services[n]!).PORT ?? '3000'}`);
    for (const [, , body] of upstreams) {
      expect([...body!.matchAll(/^\s*server (\S+)/gm)].map((m) => m[1])).toEqual(nodes);
    }
    // Every proxied location passes the WebSocket upgrade on.
    expect(conf).toContain('proxy_http_version 1.1;');
    expect(conf).toContain('proxy_set_header Upgrade $http_upgrade;');
    expect(conf).toContain('proxy_set_header Connection $connection_upgrade;');
    // Socket.IO: sessions that poll stay on their node (sticky); a WebSocket-only connection (no sid) goes anywhere.
    expect(conf).toMatch(/location \/socket\.io\/ \{[^}]*proxy_pass http:\/\/\$socketio_upstream;/);
    expect(conf).toMatch(/map "\$arg_transport:\$arg_sid" \$socketio_upstream \{\s*default\s+slotwise_sticky;\s*"websocket:"\s+slotwise;\s*\}/);
    expect(conf).toMatch(/upstream slotwise_sticky \{[^}]*hash \$remote_addr consistent;/);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => ({ op: l.split(/\s+/)[0]!.toUpperCase(), args: l.slice(l.split(/\s+/)[0]!.length).trim() }));

  it('is multi-stage: dependencies installed with npm ci in one stage, copied into the runtime stage', () => {
    const stages = instructions.filter((i) => i.op === 'FROM');
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(instructions.some((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args))).toBe(true);
    const runtimeFrom = instructions.lastIndexOf(stages.at(-1)!);
    expect(instructions.slice(runtimeFrom).some((i) => i.op === 'COPY' && /--from=\w+ \/app\/node_modules/.test(i.args))).toBe(true);
  });

  it('runs the server as an unprivileged user, with a health check on a route the server has', () => {
    const users = instructions.filter((i) => i.op === 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0', '0:0']).not.toContain(users.at(-1)!.args);
    const health = instructions.find((i) => i.op === 'HEALTHCHECK');
    expect(health?.args).toMatch(/\/(readyz|healthz)\b/);
    expect(read('server/http/routes/system.ts')).toContain(`path: '${/\/(readyz|healthz)\b/.exec(health!.args)![0]}'`);
    const cmd = instructions.filter((i) => i.op === 'CMD').at(-1)!;
    expect(JSON.parse(cmd.args)).toEqual(['node', '--import', 'tsx', 'server/main.ts']);
    // No DATABASE_URL baked in: compose (or `docker run -e`) gives it.
    expect(dockerfile).not.toMatch(/^\s*ENV[^\n]*DATABASE_URL/m);
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', '.data', '.git']));
    const sources = instructions
      .filter((i) => i.op === 'COPY' && !i.args.includes('--from='))
      .flatMap((i) => i.args.replace(/--\S+/g, '').trim().split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const src of sources) {
      expect(existsSync(path.join(ROOT, src)), `${src} exists`).toBe(true);
      expect(ignored, `${src} is not ignored`).not.toContain(src);
    }
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'server', 'shared']));
  });
});
