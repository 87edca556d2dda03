/**
 * Every answer a test receives is checked against the node's own
 * /openapi.json: the operation must document the status, the media type,
 * and the body must match the schema (JSON Schema 2020-12, as OpenAPI 3.1
 * uses). An answer that does not match throws, naming the operation, the
 * status and the schema's complaint, so the test that received it fails.
 * Answers to paths the document does not name under /v1 (an unknown route)
 * must still be problem+json; the documentation itself (/openapi.json,
 * /docs) and CORS preflights are not part of the API.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS: its default export arrives wrapped under tsx/vitest.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as typeof addFormatsModule;

type Json = Record<string, any>;

/** An answer the document does not allow (never to be taken for a network failure). */
export class ContractError extends Error {}
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** One document with its compiled validators and path matchers. */
export class Contract {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly templates: { template: string; re: RegExp; params: number }[];

  constructor(readonly doc: Json) {
    addFormats(this.ajv);
    this.ajv.addSchema(doc, 'openapi.json');
    this.templates = Object.keys(doc.paths ?? {})
      .map((template) => ({
        template,
        re: new RegExp(`^${template.split(/\{\w+\}/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^/]+')}$`),
        params: (template.match(/\{\w+\}/g) ?? []).length,
      }))
      // A literal path wins over a template that also matches.
      .sort((a, b) => a.params - b.params);
  }

  /** The validator of the schema at a JSON pointer into the document (segments unescaped). */
  private validator(segments: string[]): ValidateFunction {
    const pointer = segments.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');
    let v = this.validators.get(pointer);
    if (!v) {
      v = this.ajv.compile({ $ref: `openapi.json#/${pointer}` });
      this.validators.set(pointer, v);
    }
    return v;
  }

  private schemaErrors(segments: string[], body: unknown): string | null {
    const v = this.validator(segments);
    if (v(body)) return null;
    return this.ajv.errorsText(v.errors, { dataVar: 'body', separator: '; ' });
  }

  /** Throws unless the answer is one the document describes. */
  check(a: { method: string; url: string; status: number; contentType: string; text: string }): void {
    const method = a.method.toLowerCase();
    if (method === 'options' || method === 'head') return;
    const pathname = new URL(a.url, 'http://x').pathname;
    const found = this.templates.find((t) => t.re.test(pathname) && this.doc.paths[t.template][method]);
    const media = a.contentType.split(';')[0]!.trim().toLowerCase();
    const where = `${a.method.toUpperCase()} ${found?.template ?? pathname} answered ${a.status}`;
    const excerpt = () => (a.text.length > 300 ? `${a.text.slice(0, 300)}…` : a.text);
    const fail = (why: string): never => {
      throw new ContractError(`contract: ${where}, which /openapi.json does not allow: ${why}\n  body: ${excerpt()}`);
    };
    if (!found) {
      // Not an operation: the documentation itself, or anything outside the API, is not checked; under /v1 it is an
      // unknown route (or method), answered as a problem like every refusal.
      if (!pathname.startsWith('/v1/')) return;
      if (a.status < 400 || a.status >= 500) fail('an undocumented route must be refused with a 4xx');
      if (media !== 'application/problem+json') fail(`content type ${a.contentType || '(none)'} instead of application/problem+json`);
      const errors = this.schemaErrors(['components', 'schemas', 'Problem'], parse(a.text, fail));
      if (errors) fail(errors);
      return;
    }
    const responses = this.doc.paths[found.template][method].responses ?? {};
    const key = [String(a.status), `${String(a.status)[0]}XX`, 'default'].find((k) => responses[k]);
    if (!key) fail(`status ${a.status} is not documented (documented: ${Object.keys(responses).join(', ')})`);
    const content = responses[key!].content as Json | undefined;
    if (!content) {
      if (a.text !== '') fail('the document says this answer has no body');
      return;
    }
    const entry = Object.keys(content).find((m) => m.toLowerCase() === media);
    if (!entry) fail(`content type ${a.contentType || '(none)'} is not documented (documented: ${Object.keys(content).join(', ')})`);
    if (!/^application\/([\w.-]+\+)?json$/.test(media)) return;
    const errors = this.schemaErrors(['paths', found.template, method, 'responses', key!, 'content', entry!, 'schema'], parse(a.text, fail));
    if (errors) fail(errors);
  }
}

function parse(text: string, fail: (why: string) => never): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return fail('the body is not JSON');
  }
}

const contracts = new Map<string, Promise<Contract>>();
let lastGood: Contract | undefined;

/** The contract a node serves, read once per origin. */
export function contractOf(base: string): Promise<Contract> {
  const origin = new URL(base).origin;
  let c = contracts.get(origin);
  if (!c) {
    c = (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await fetch(`${origin}/openapi.json`);
          const text = await res.text();
          if (res.status === 200) return (lastGood = new Contract(JSON.parse(text)));
          // A node under a test's load or limits may refuse for a moment: try again, then use what the same build served elsewhere.
          if (attempt >= 20) throw new Error(`${res.status} ${text.slice(0, 200)}`);
        } catch (err) {
          if (lastGood) return lastGood;
          if (attempt >= 20) throw new Error(`could not read ${origin}/openapi.json to check answers against: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    contracts.set(origin, c);
    // A node that is gone (fault tests restart them on the same port) is read again next time.
    c.catch(() => contracts.delete(origin));
  }
  return c;
}

/** Throws unless the answer matches the served /openapi.json (see the file comment). */
export async function checkAnswer(base: string, a: { method: string; path: string; status: number; contentType: string | null; text: string }): Promise<void> {
  const method = a.method.toLowerCase();
  if (!METHODS.includes(method) || method === 'options' || method === 'head') return;
  const pathname = new URL(a.path, base).pathname;
  // The documentation itself is not an operation of the API it documents.
  if (pathname === '/openapi.json' || pathname === '/docs' || pathname.startsWith('/docs/')) return;
  const contract = await contractOf(base);
  contract.check({ method, url: a.path, status: a.status, contentType: a.contentType ?? '', text: a.text });
}
