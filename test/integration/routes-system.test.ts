/** Operational routes over HTTP: the OpenAPI document against the route files, /docs and its assets, health, readiness, metrics. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, type Call, startNode, type TestNode } from '../helpers/node';

const ROUTES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../server/http/routes');
// These serve the documentation itself, not the API it documents.
const DOCUMENTATION_ROUTES = new Set(['get /openapi.json', 'get /docs', 'get /docs/assets/{file}']);

/** Every `app.<method>('<path>'` (and `app.doc31('<path>'`) in server/http/routes, as `method /openapi/{style}`. */
function routesInSource(): string[] {
  const out: string[] = [];
  for (const file of readdirSync(ROUTES_DIR).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(path.join(ROUTES_DIR, file), 'utf8');
    for (const m of source.matchAll(/\bapp\.(get|post|put|patch|delete|doc31|doc)\(\s*['"`]([^'"`]+)['"`]/g)) {
      const method = m[1]!.startsWith('doc') ? 'get' : m[1]!;
      out.push(`${method} ${m[2]!.replace(/:(\w+)/g, '{$1}')}`);
    }
  }
  return out.sort();
}

let t: TestNode;
let anon: Call;
beforeAll(async () => {
  t = await startNode();
  anon = client(t.url);
});
afterAll(async () => t.stop());

describe('/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const res = await anon('GET', '/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.body.openapi).toMatch(/^3\.1\./);
    // validate() dereferences in place, so give it a copy.
    await expect(SwaggerParser.validate(structuredClone(res.body))).resolves.toBeTruthy();
  });

  it('describes every route registered in server/http/routes', async () => {
    const routes = routesInSource();
    // Guard the source scan itself: it must see the routes we know exist.
    expect(routes).toEqual(expect.arrayContaining(['post /v1/holds', 'patch /v1/bookings/{id}', 'delete /v1/blocks/{id}', 'get /healthz']));
    expect(routes.length).toBeGreaterThanOrEqual(25);

    const doc = (await anon('GET', '/openapi.json')).body;
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) =>
      Object.keys(ops).filter((k) => ['get', 'post', 'put', 'patch', 'delete'].includes(k)).map((k) => `${k} ${p}`),
    );
    const missing = routes.filter((r) => !DOCUMENTATION_ROUTES.has(r) && !documented.includes(r));
    expect(missing).toEqual([]);
    // And nothing is documented that the server does not route.
    expect(documented.filter((d) => !routes.includes(d))).toEqual([]);

    // Each documented operation names its responses, and path parameters are declared.
    for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(Object.keys(op.responses ?? {}).length, `${method} ${p}`).toBeGreaterThan(0);
        for (const name of [...p.matchAll(/\{(\w+)\}/g)].map((m) => m[1])) {
          expect((op.parameters ?? []).some((x: any) => x.in === 'path' && x.name === name), `${method} ${p} declares ${name}`).toBe(true);
        }
      }
    }
  });
});

describe('/docs', () => {
  it('serves HTML whose assets all load with a script or style content type', async () => {
    const page = await anon('GET', '/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.text).toContain('/openapi.json');

    const assets = [...page.text.matchAll(/<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(2);
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
    expect(assets.some((a) => a.endsWith('.css'))).toBe(true);
    for (const asset of assets) {
      const res = await fetch(new URL(asset, `${t.url}/docs`));
      expect(res.status, asset).toBe(200);
      const type = res.headers.get('content-type') ?? '';
      expect(type, asset).toMatch(asset.endsWith('.css') ? /^text\/css/ : /^(text|application)\/javascript/);
      expect((await res.text()).length, asset).toBeGreaterThan(1000);
    }
    expect((await anon('GET', '/docs/assets/../../package.json')).status).toBe(404);
    expect((await anon('GET', '/docs/assets/index.html')).status).toBe(404);
  });
});

describe('health, readiness and metrics', () => {
  it('/healthz is 200', async () => {
    const res = await anon('GET', '/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('/readyz is 200 with postgres ok', async () => {
    const res = await anon('GET', '/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', checks: { postgres: 'ok' } });
  });

  it('/metrics exposes the request duration histogram by route', async () => {
    expect((await anon('GET', '/healthz')).status).toBe(200);
    const res = await anon('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(res.text).toContain('# TYPE slotwise_http_request_duration_seconds histogram');
    expect(res.text).toMatch(/slotwise_http_request_duration_seconds_count\{[^}]*route="\/healthz"[^}]*\} [1-9]/);
  });

  it('answers unknown routes with a problem+json 404', async () => {
    const res = await anon('GET', '/v1/nowhere');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body).toMatchObject({ status: 404, code: 'not-found' });
  });
});
