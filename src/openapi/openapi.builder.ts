import { DynamicModule, Injectable, RequestMethod, Type } from '@nestjs/common';
import { METHOD_METADATA, MODULE_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { z } from 'zod';
import { DOC_METADATA, RouteDoc } from '../common/http/zod-validation';

const METHODS: Partial<Record<RequestMethod, string>> = {
  [RequestMethod.GET]: 'get',
  [RequestMethod.POST]: 'post',
  [RequestMethod.PUT]: 'put',
  [RequestMethod.PATCH]: 'patch',
  [RequestMethod.DELETE]: 'delete',
};

const errorEnvelope = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { message: { type: 'string' }, type: { type: 'string' }, param: { type: ['string', 'null'] }, code: { type: 'string' } },
      required: ['message', 'type', 'param', 'code'],
    },
  },
};

function jsonSchema(schema: z.ZodType, io: 'input' | 'output') {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

/**
 * OpenAPI 3.1 from the routes themselves: paths from Nest's metadata, request schemas from the very zod schemas
 * the validation pipes use (`@ZBody`, `@ZQuery`), so the document cannot drift from what the API accepts.
 */
@Injectable()
export class OpenApiBuilder {
  private cached?: Record<string, unknown>;

  constructor(private readonly discovery: DiscoveryService) {}

  document(): Record<string, unknown> {
    this.cached ??= buildOpenApiDocument(this.discovery.getControllers().flatMap((w) => (w.metatype ? [w.metatype as Type] : [])));
    return this.cached;
  }
}

/**
 * The controllers a module tree declares, read from decorator metadata without instantiating anything, so the
 * build can write the document (and the dashboard's generated types) with no database or Redis running.
 */
export function controllersOf(root: Type | DynamicModule): Type[] {
  const seen = new Set<unknown>();
  const out: Type[] = [];
  const visit = (m: unknown) => {
    if (!m || seen.has(m)) return;
    seen.add(m);
    const dynamic = typeof m === 'object' && 'module' in m ? (m as DynamicModule) : undefined;
    const cls = dynamic ? dynamic.module : (m as Type);
    for (const c of [...(Reflect.getMetadata(MODULE_METADATA.CONTROLLERS, cls) ?? []), ...(dynamic?.controllers ?? [])]) if (!out.includes(c)) out.push(c);
    for (const i of [...(Reflect.getMetadata(MODULE_METADATA.IMPORTS, cls) ?? []), ...(dynamic?.imports ?? [])]) visit(i);
  };
  visit(root);
  return out;
}

export function buildOpenApiDocument(controllers: Type[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const scanner = new MetadataScanner();
  for (const metatype of controllers) {
    const base = String(Reflect.getMetadata(PATH_METADATA, metatype) ?? '');
    const proto = metatype.prototype;
    for (const name of scanner.getAllMethodNames(proto)) {
      const handler = proto[name];
      const sub = Reflect.getMetadata(PATH_METADATA, handler);
      const method = METHODS[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod];
      if (sub === undefined || !method) continue;
      const doc: RouteDoc = Reflect.getMetadata(DOC_METADATA, proto, name) ?? {};
      const path = `/${[base, sub].map((s) => String(s).replace(/^\/|\/$/g, '')).filter(Boolean).join('/')}`.replace(/:([a-zA-Z0-9_]+)/g, '{$1}');
      (paths[path] ??= {})[method] = operation(path, doc);
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'loraplane',
      version: '0.1.0',
      description: 'LoRA fine-tuning control plane. OpenAI-compatible where OpenAI defines the API (files, fine-tuning jobs, models).',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas: { Error: errorEnvelope } },
    security: [{ bearer: [] }],
    paths,
  };
}

/** The 200 answer's media types: the JSON (with its schema where the route has one) and any text forms. */
function responseContent(doc: RouteDoc): Record<string, unknown> {
  const content: Record<string, unknown> = { [doc.responseContentType ?? 'application/json']: doc.response ? { schema: jsonSchema(doc.response, 'output') } : {} };
  for (const type of doc.textResponseTypes ?? []) content[type] = { schema: { type: 'string' } };
  return content;
}

function operation(path: string, doc: RouteDoc) {
  const params = [...path.matchAll(/\{([a-zA-Z0-9_]+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
  if (doc.query) {
    const q = jsonSchema(doc.query, 'input') as { properties?: Record<string, unknown>; required?: string[] };
    for (const [name, schema] of Object.entries(q.properties ?? {})) params.push({ name, in: 'query', required: (q.required ?? []).includes(name), schema } as never);
  }
  const op: Record<string, unknown> = {
    summary: doc.summary,
    tags: doc.tags,
    parameters: params.length ? params : undefined,
    security: doc.public ? [] : undefined,
    responses: {
      '200': { description: 'OK', content: responseContent(doc) },
      default: { description: "Error in OpenAI's envelope", content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    },
  };
  if (doc.body) {
    op.requestBody = { required: true, content: { [doc.bodyContentType ?? 'application/json']: { schema: jsonSchema(doc.body, 'input') } } };
  }
  return op;
}
