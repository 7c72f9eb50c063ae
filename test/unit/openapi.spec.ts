import { Controller, Delete, Get, Param, Post } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { z } from 'zod';
import { ApiDoc, ZBody, ZQuery } from '../../src/common/http/zod-validation';
import { renderDocsPage } from '../../src/openapi/docs-page';
import { OpenApiBuilder } from '../../src/openapi/openapi.builder';

const createWidget = z.object({
  name: z.string().min(1).max(64),
  size: z.enum(['s', 'm', 'l']).default('m'), // defaulted: optional for a caller, so not required in the input schema
  tags: z.array(z.string()).optional(),
});
const widgetView = z.object({ id: z.string(), object: z.literal('widget'), size: z.enum(['s', 'm', 'l']) });
const partsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.string().optional(),
  order: z.enum(['asc', 'desc']),
});
const uploadForm = z.object({ purpose: z.literal('fine-tune') });

@Controller('v1/widgets')
class WidgetsController {
  @Post()
  @ApiDoc({ summary: 'Create a <widget> & "friends"', tags: ['widgets'], response: widgetView })
  create(@ZBody(createWidget) body: unknown) {
    return body;
  }

  @Get(':widget_id/parts')
  @ApiDoc({ summary: 'List the parts of a widget', tags: ['widgets'] })
  parts(@Param('widget_id') id: string, @ZQuery(partsQuery) query: unknown) {
    return { id, query };
  }

  @Delete(':widget_id')
  remove(@Param('widget_id') id: string) {
    return id;
  }

  @Post('/uploads/')
  @ApiDoc({ summary: 'Upload a widget file', tags: ['widgets'], multipartBody: uploadForm })
  upload() {
    return null;
  }

  @Get(':widget_id/report')
  @ApiDoc({ summary: 'A report: JSON, or Markdown or HTML by ?format', tags: ['widgets'], response: widgetView, textResponseTypes: ['text/markdown', 'text/html'] })
  report(@Param('widget_id') id: string) {
    return id;
  }

  /** Not a route: must not appear in the document. */
  helper() {
    return 'x';
  }
}

@Controller()
class HealthController {
  @Get('healthz')
  @ApiDoc({ summary: 'Liveness', tags: ['health'], public: true })
  health() {
    return { ok: true };
  }
}

const toJson = (schema: z.ZodType, io: 'input' | 'output') => {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { io }) as Record<string, unknown>;
  return rest;
};

type Operation = {
  summary?: string;
  tags?: string[];
  parameters?: { name: string; in: string; required: boolean; schema: unknown }[];
  requestBody?: { required: boolean; content: Record<string, { schema: Record<string, unknown> }> };
  responses: Record<string, { content: Record<string, { schema?: unknown }> }>;
  security?: unknown[];
};

describe('OpenApiBuilder', () => {
  let doc: Record<string, unknown>;
  let paths: Record<string, Record<string, Operation>>;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [DiscoveryModule],
      controllers: [WidgetsController, HealthController],
      providers: [OpenApiBuilder],
    }).compile();
    doc = moduleRef.get(OpenApiBuilder).document();
    paths = doc.paths as typeof paths;
    await moduleRef.close();
  });

  it('is an OpenAPI 3.1 document with bearer auth and the error envelope', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.security).toEqual([{ bearer: [] }]);
    const error = (doc.components as { schemas: { Error: { properties: { error: { required: string[] } } } } }).schemas.Error;
    expect(error.properties.error.required).toEqual(['message', 'type', 'param', 'code']);
  });

  it('lists every route, and only routes, with {param} syntax', () => {
    expect(Object.keys(paths).sort()).toEqual(['/healthz', '/v1/widgets', '/v1/widgets/uploads', '/v1/widgets/{widget_id}', '/v1/widgets/{widget_id}/parts', '/v1/widgets/{widget_id}/report']);
    expect(Object.keys(paths['/v1/widgets'])).toEqual(['post']);
    expect(Object.keys(paths['/v1/widgets/{widget_id}'])).toEqual(['delete']);
    expect(Object.keys(paths['/v1/widgets/{widget_id}/parts'])).toEqual(['get']);
    expect(JSON.stringify(Object.keys(paths))).not.toContain(':');
  });

  it('documents the request body with exactly the JSON schema of the zod schema that validates it', () => {
    const op = paths['/v1/widgets'].post;
    expect(op.requestBody!.required).toBe(true);
    const schema = op.requestBody!.content['application/json'].schema;
    expect(schema).toEqual(toJson(createWidget, 'input'));
    // What a caller must send: the defaulted field is optional.
    expect(schema.required).toEqual(['name']);
    expect(op.summary).toBe('Create a <widget> & "friends"');
    expect(op.tags).toEqual(['widgets']);
  });

  it('documents the response schema as output and the error envelope as default', () => {
    const op = paths['/v1/widgets'].post;
    expect(op.responses['200'].content['application/json'].schema).toEqual(toJson(widgetView, 'output'));
    expect(op.responses.default.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
  });

  it('documents the text forms of a route beside its JSON schema', () => {
    const content = paths['/v1/widgets/{widget_id}/report'].get.responses['200'].content;
    expect(content).toEqual({
      'application/json': { schema: toJson(widgetView, 'output') },
      'text/markdown': { schema: { type: 'string' } },
      'text/html': { schema: { type: 'string' } },
    });
  });

  it('lists path parameters as required and query parameters with their own required flags', () => {
    const op = paths['/v1/widgets/{widget_id}/parts'].get;
    const query = toJson(partsQuery, 'input') as { properties: Record<string, unknown> };
    expect(op.parameters).toEqual([
      { name: 'widget_id', in: 'path', required: true, schema: { type: 'string' } },
      { name: 'limit', in: 'query', required: false, schema: query.properties.limit },
      { name: 'after', in: 'query', required: false, schema: query.properties.after },
      { name: 'order', in: 'query', required: true, schema: query.properties.order },
    ]);
    expect(op.requestBody).toBeUndefined();
  });

  it('documents a route without ApiDoc from its path alone', () => {
    const op = paths['/v1/widgets/{widget_id}'].delete;
    expect(op.summary).toBeUndefined();
    expect(op.parameters).toEqual([{ name: 'widget_id', in: 'path', required: true, schema: { type: 'string' } }]);
  });

  it('documents a multipart body under its content type', () => {
    const op = paths['/v1/widgets/uploads'].post;
    expect(Object.keys(op.requestBody!.content)).toEqual(['multipart/form-data']);
    expect(op.requestBody!.content['multipart/form-data'].schema).toEqual(toJson(uploadForm, 'input'));
  });

  it('marks public routes as needing no key, and leaves the others to the global bearer rule', () => {
    expect(paths['/healthz'].get.security).toEqual([]);
    expect(paths['/v1/widgets'].post.security).toBeUndefined();
  });
});

describe('renderDocsPage', () => {
  let html: string;
  let doc: Record<string, unknown>;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [DiscoveryModule],
      controllers: [WidgetsController, HealthController],
      providers: [OpenApiBuilder],
    }).compile();
    doc = moduleRef.get(OpenApiBuilder).document();
    html = renderDocsPage(doc);
    await moduleRef.close();
  });

  it('lists each route with its method and path, grouped by tag', () => {
    expect(html).toContain('<span class="m get">GET</span> <code>/v1/widgets/{widget_id}/parts</code>');
    expect(html).toContain('<span class="m delete">DELETE</span> <code>/v1/widgets/{widget_id}</code>');
    expect(html).toContain('<h2 id="widgets">widgets</h2>');
    expect(html).toContain('<h2 id="other">other</h2>'); // the route without tags
    // Each operation once.
    expect(html.match(/<section>/g)).toHaveLength(6);
  });

  it('escapes every piece of text it takes from the document', () => {
    expect(html).toContain('Create a &lt;widget&gt; &amp; &quot;friends&quot;');
    expect(html).not.toContain('<widget>');
    const hostile = renderDocsPage({
      info: { title: '<script>alert(1)</script>', version: '1"><img src=x>', description: 'a & b' },
      paths: { '/x/<y>': { get: { summary: '<b>bold</b>', tags: ['<evil-tag>'], parameters: [{ name: '<evil-param>', in: 'query', required: false }] } } },
    });
    expect(hostile).not.toMatch(/<script>|<img|<b>|<evil|<y>/);
    expect(hostile).toContain('<h2 id="&lt;evil-tag&gt;">&lt;evil-tag&gt;</h2>');
    expect(hostile).toContain('<code>&lt;evil-param&gt;</code>');
    expect(hostile).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(hostile).toContain('1&quot;&gt;&lt;img src=x&gt;');
    expect(hostile).toContain('<code>/x/&lt;y&gt;</code>');
  });

  it('shows parameters with their place and required flag, and the body schema escaped', () => {
    expect(html).toContain('<code>widget_id</code> <small>path, required</small>');
    expect(html).toContain('<code>limit</code> <small>query</small>,');
    expect(html).toContain('<code>order</code> <small>query, required</small>');
    expect(html).toContain('<summary>application/json body</summary>');
    expect(html).toContain('&quot;name&quot;');
    expect(html).toContain('<summary>multipart/form-data body</summary>');
  });

  it('marks routes that need no key', () => {
    expect(html).toMatch(/<code>\/healthz<\/code> <small>\(no key\)<\/small>/);
    expect(html).not.toMatch(/<code>\/v1\/widgets<\/code> <small>\(no key\)/);
  });

  it('is self-contained: no scripts and no external resources', () => {
    expect(html).not.toMatch(/<script|<link|src="http/i);
    expect(html.startsWith('<!doctype html>')).toBe(true);
  });
});
