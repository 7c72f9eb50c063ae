import 'reflect-metadata';
import Ajv2020, { ValidateFunction } from 'ajv/dist/2020';
import { AppModule } from '../../src/app.module';
import { Config } from '../../src/config/config';
import { buildOpenApiDocument, controllersOf } from '../../src/openapi/openapi.builder';

/**
 * loraplane's own API contract in the end-to-end specs: a 2xx JSON answer is checked against the JSON schema its
 * route's OpenAPI entry gives (the document the build turns into the dashboard's and the CLI's types). The schemas
 * are zod's output schemas, which forbid properties they do not list, so an answer that carries an undocumented
 * field, lacks a documented one or has another type fails, and the generated types cannot silently lie.
 */
type Operation = { responses?: Record<string, { content?: Record<string, { schema?: object }> }> };
type Document = { paths: Record<string, Record<string, Operation>> };

let doc: Document | undefined;
/** The document the app serves, built as the build builds it: from the module tree's metadata, nothing started. */
export function apiDocument(): Document {
  if (!doc) {
    const config = Config.fromEnv({ DATABASE_URL: 'postgresql://contract/none', REDIS_URL: 'redis://contract', S3_BUCKET: 'contract-only', LORAPLANE_MODE: 'dev' });
    doc = buildOpenApiDocument(controllersOf(AppModule.register(config))) as Document;
  }
  return doc;
}

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
/** `METHOD /template` of every route whose answer was checked and matched, in this spec file. */
export const checkedRoutes = new Set<string>();
const validators = new Map<string, ValidateFunction>();
const templates = new Map<string, RegExp>();

/** The path template a concrete path was served by: literal segments win over parameters, as in the router. */
export function routeTemplate(method: string, path: string): string | undefined {
  const m = method.toLowerCase();
  const matches = Object.keys(apiDocument().paths).filter((t) => {
    if (!apiDocument().paths[t][m]) return false;
    if (!templates.has(t)) templates.set(t, new RegExp(`^${t.replace(/\./g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`));
    return templates.get(t)!.test(path);
  });
  const literals = (t: string) => t.split('/').filter((s) => s && !s.startsWith('{')).length;
  return matches.sort((a, b) => literals(b) - literals(a))[0];
}

/**
 * Where `body` (the JSON answer of `method path`, query string allowed) departs from its route's documented schema,
 * one line per mismatch; null when the route documents no JSON schema (nothing to check).
 */
export function contractViolations(method: string, path: string, body: unknown): string[] | null {
  const bare = path.split('?')[0];
  const template = routeTemplate(method, bare);
  const schema = template && apiDocument().paths[template][method.toLowerCase()].responses?.['200']?.content?.['application/json']?.schema;
  if (!template || !schema) return null;
  const key = `${method.toUpperCase()} ${template}`;
  if (!validators.has(key)) validators.set(key, ajv.compile(schema));
  const validate = validators.get(key)!;
  if (validate(body)) {
    checkedRoutes.add(key);
    return [];
  }
  return (validate.errors ?? []).map((e) => `${key}: $${e.instancePath.replace(/\//g, '.')} ${e.message}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`);
}

/** Throws, naming every mismatch, when a 2xx JSON answer does not match its route's documented schema. */
export function expectDocumented(method: string, path: string, body: unknown): void {
  const violations = contractViolations(method, path, body);
  if (violations?.length) throw new Error(`The answer departs from the OpenAPI document:\n  ${violations.slice(0, 10).join('\n  ')}\nbody: ${JSON.stringify(body).slice(0, 2000)}`);
}
