/** Operational routes over HTTP: the OpenAPI document against the app's route table, the contract check, /docs and its assets, health, readiness, metrics. */
import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Contract } from '../helpers/contract';
import { client, type Call, startNode, type TestNode } from '../helpers/node';

// These serve the documentation itself, not the API it documents.
// The description itself and the browser demo's page and files: not API.
const DOCUMENTATION_ROUTES = new Set(['get /openapi.json', 'get /docs', 'get /docs/assets/{file}', 'get /', 'get /assets/{file}']);

/** Every route the app serves (its own route table, not its sources), as `method /openapi/{style}`. */
function routesOf(app: TestNode['node']['app']): string[] {
  const out = new Set<string>();
  for (const r of app.routes) {
    if (['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method)) out.add(`${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`);
  }
  return [...out].sort();
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

  it('describes every route the app serves, and nothing else', async () => {
    const routes = routesOf(t.node.app);
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

  it('documents the answers every /v1 route shares, from what the route is', async () => {
    const doc = (await anon('GET', '/openapi.json')).body;
    let checked = 0;
    for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      if (!p.startsWith('/v1/')) continue;
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method} ${p}`;
        const statuses = Object.keys(op.responses);
        const expected = ['400', '401', '403', '408', '429', '431', '503'];
        if (method !== 'get') expected.push('413');
        if (method === 'post' || method === 'patch') expected.push('422');
        if (op.requestBody) expected.push('415');
        const params = (op.parameters ?? []).filter((x: any) => x.in === 'path');
        if (params.some((x: any) => x.schema.format === 'uuid')) expected.push('404');
        expect(statuses, where).toEqual(expect.arrayContaining(expected));
        for (const s of statuses.filter((x) => Number(x) >= 400)) expect(Object.keys(op.responses[s].content ?? {}), `${where} ${s}`).toContain('application/problem+json');
        // Only object ids are UUIDs: user ids are the tenant's own strings.
        for (const x of params) expect(x.schema.format === 'uuid', `${where} {${x.name}}`).toBe(x.name !== 'userId');
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(30);
    // A nullable named schema is anyOf [ref, null]: an allOf with a nullable member would still refuse null.
    const allOfs: any[] = [];
    JSON.stringify(doc, (k, v) => (k === 'allOf' && allOfs.push(v), v));
    for (const parts of allOfs) {
      expect(parts.some((x: any) => Array.isArray(x.type) && x.type.includes('null')), JSON.stringify(parts)).toBe(false);
      // Two closed parts of an allOf make an object nothing can satisfy.
      const closed = parts.filter((x: any) => x.additionalProperties === false || (x.$ref && doc.components.schemas[x.$ref.split('/').pop()].additionalProperties === false));
      expect(closed.length, JSON.stringify(parts)).toBe(0);
    }
  });
});

describe('the contract check (helpers/contract.ts)', () => {
  const id = '0b6f3c2e-8d0a-4c1e-9b1f-2f8a6c1d9e01';
  const json = 'application/json';
  const problemJson = 'application/problem+json';
  const problem = JSON.stringify({ type: 'https://slotwise.dev/problems/not-found', title: 'Not found', status: 404, detail: 'no', code: 'not-found' });
  let contract: Contract;
  beforeAll(async () => {
    contract = new Contract((await anon('GET', '/openapi.json')).body);
  });

  it('refuses an undocumented status, a body off its schema, an undocumented media type, and a non-problem on an unknown route', () => {
    expect(() => contract.check({ method: 'get', url: `/v1/holds/${id}`, status: 201, contentType: json, text: '{}' })).toThrow(/GET \/v1\/holds\/\{id\} answered 201.*status 201 is not documented/);
    expect(() => contract.check({ method: 'get', url: `/v1/holds/${id}`, status: 200, contentType: json, text: JSON.stringify({ id }) })).toThrow(/must have required property 'status'/);
    expect(() => contract.check({ method: 'get', url: `/v1/holds/${id}`, status: 404, contentType: 'text/html', text: '<p>no</p>' })).toThrow(/content type text\/html is not documented/);
    expect(() => contract.check({ method: 'get', url: '/v1/availability?x=1', status: 304, contentType: json, text: '{}' })).toThrow(/has no body/);
    expect(() => contract.check({ method: 'get', url: '/v1/nowhere', status: 200, contentType: json, text: '{}' })).toThrow(/4xx/);
    expect(() => contract.check({ method: 'post', url: '/v1/tenants', status: 201, contentType: json, text: JSON.stringify({ id, name: 'T', apiKey: 7, createdAt: '2027-01-12T09:00:00Z' }) })).toThrow(/apiKey/);
  });

  it('accepts what the server truly answers: problems, 304, replayed keys, nullable holds, user ids in paths', () => {
    contract.check({ method: 'get', url: `/v1/holds/${id}`, status: 404, contentType: problemJson, text: problem });
    contract.check({ method: 'get', url: '/v1/nowhere', status: 404, contentType: problemJson, text: problem });
    contract.check({ method: 'get', url: '/v1/availability?x=1', status: 304, contentType: '', text: '' });
    contract.check({ method: 'post', url: '/v1/tenants', status: 201, contentType: json, text: JSON.stringify({ id, name: 'T', apiKey: null, createdAt: '2027-01-12T09:00:00Z' }) });
    const group = {
      id, docName: `group:${id}`, title: 'Trip', status: 'draft', holdId: null, bookingId: null,
      members: [{ userId: 'u-bob', role: 'organizer', addedAt: '2027-01-12T09:00:00Z' }], document: {}, hold: null, booking: null, createdAt: '2027-01-12T09:00:00Z',
    };
    contract.check({ method: 'delete', url: `/v1/group-bookings/${id}/members/u-bob`, status: 200, contentType: json, text: JSON.stringify(group) });
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
