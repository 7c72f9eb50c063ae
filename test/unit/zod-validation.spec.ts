import 'reflect-metadata';
import { z } from 'zod';
import { DomainError, errorCodes } from '../../src/common/domain-error';
import { ApiDoc, DOC_METADATA, fieldPath, RouteDoc, ZBody, ZodPipe, ZQuery } from '../../src/common/http/zod-validation';

const chatBody = z.object({
  model: z.string().min(1),
  messages: z.array(z.object({ role: z.enum(['user', 'assistant']), content: z.string() })).min(1),
  temperature: z.number().min(0).max(2).default(1),
});

/** The DomainError the pipe throws for `value`; fails the test when it accepts it. */
function rejection(pipe: ZodPipe<z.ZodType>, value: unknown): DomainError {
  try {
    pipe.transform(value);
  } catch (err) {
    if (err instanceof DomainError) return err;
    throw err;
  }
  throw new Error(`the pipe accepted ${JSON.stringify(value)}`);
}

describe('fieldPath', () => {
  it.each<[PropertyKey[], string]>([
    [['messages', 0, 'role'], 'messages[0].role'],
    [['hyperparameters', 'n_epochs'], 'hyperparameters.n_epochs'],
    [['messages', 2, 'tool_calls', 0, 'function', 'name'], 'messages[2].tool_calls[0].function.name'],
    [['matrix', 0, 1], 'matrix[0][1]'],
    [[0, 'role'], '[0].role'],
    [['model'], 'model'],
    [[], ''],
  ])('%j -> %s', (path, expected) => {
    expect(fieldPath(path)).toBe(expected);
  });
});

describe('ZodPipe', () => {
  const body = new ZodPipe(chatBody, 'body');

  it('returns the parsed value: defaults applied, unknown keys dropped', () => {
    expect(body.transform({ model: 'tiny-lora', messages: [{ role: 'user', content: 'hi' }], extra: true })).toEqual({
      model: 'tiny-lora',
      messages: [{ role: 'user', content: 'hi' }],
      temperature: 1,
    });
  });

  it('turns one zod issue into invalid_request naming the field the OpenAI way', () => {
    const err = rejection(body, { model: 'tiny-lora', messages: [{ role: 'robot', content: 'hi' }] });
    expect(err.code).toBe('invalid_request');
    expect(errorCodes[err.code].status).toBe(400);
    expect(err.param).toBe('messages[0].role');
    expect(err.message).toMatch(/^Invalid body: 'messages\[0\]\.role': /);
    expect(err.message).toContain('"user"'); // zod's own explanation is kept
    expect(err.message).not.toContain('more');
  });

  it('puts the first issue in param and summarises up to three more', () => {
    const err = rejection(body, {
      model: '',
      messages: [{ role: 'x', content: 1 }, { role: 'y', content: 2 }],
      temperature: 5,
    });
    expect(err.param).toBe('model');
    const [first, rest] = err.message.split(' (and ');
    expect(first).toMatch(/^Invalid body: 'model': /);
    expect(rest).toMatch(/^5 more: /);
    // The next three, in zod's order, each named; the fifth and sixth only counted.
    const named = [...rest.matchAll(/'([^']+)':/g)].map((m) => m[1]);
    expect(named).toEqual(['messages[0].role', 'messages[0].content', 'messages[1].role']);
    expect(rest.split('; ')).toHaveLength(3);
  });

  it('has no param when the whole value is wrong', () => {
    const err = rejection(body, 'not an object');
    expect(err.param).toBeNull();
    expect(err.message).toMatch(/^Invalid body: [^']/);
    expect(err.message).toMatch(/object/);
  });

  it('has no param for an object-level rule', () => {
    const schema = z.object({ a: z.number().optional(), b: z.number().optional() }).refine((v) => (v.a === undefined) !== (v.b === undefined), 'set exactly one of a and b');
    const err = rejection(new ZodPipe(schema, 'body'), { a: 1, b: 2 });
    expect(err.param).toBeNull();
    expect(err.message).toBe('Invalid body: set exactly one of a and b');
  });

  it('treats a missing body or query as an empty object, so required fields are named and defaults apply', () => {
    expect(rejection(body, undefined).param).toBe('model');
    const query = new ZodPipe(z.object({ limit: z.coerce.number().int().min(1).max(100).default(20), after: z.string().optional() }), 'query');
    expect(query.transform(undefined)).toEqual({ limit: 20 });
    expect(query.transform({ limit: '5' })).toEqual({ limit: 5 });
  });

  it('says where the bad value was', () => {
    const query = new ZodPipe(z.object({ limit: z.coerce.number().max(100) }), 'query');
    const err = rejection(query, { limit: '1000' });
    expect(err.param).toBe('limit');
    expect(err.message).toMatch(/^Invalid query: 'limit': /);
    expect(rejection(new ZodPipe(z.string().startsWith('ftjob-'), 'path'), 'job-1').message).toMatch(/^Invalid path: /);
  });
});

describe('route decorators', () => {
  const listQuery = z.object({ limit: z.coerce.number().optional() });
  const upload = z.object({ purpose: z.literal('fine-tune') });

  class Example {
    @ApiDoc({ summary: 'Create', tags: ['things'], response: chatBody })
    create(@ZBody(chatBody) _body: unknown) {}

    @ApiDoc({ summary: 'List', public: true })
    list(@ZQuery(listQuery) _q: unknown) {}

    @ApiDoc({ summary: 'Upload', multipartBody: upload })
    upload() {}
  }

  const doc = (name: keyof Example): RouteDoc => Reflect.getMetadata(DOC_METADATA, Example.prototype, name);

  it('records the validated schema and the ApiDoc fields on the same route, whatever the decorator order', () => {
    expect(doc('create')).toEqual({ summary: 'Create', tags: ['things'], response: chatBody, body: chatBody });
    expect(doc('list')).toEqual({ summary: 'List', public: true, query: listQuery });
  });

  it('records a multipart body with its content type', () => {
    expect(doc('upload')).toEqual({ summary: 'Upload', body: upload, bodyContentType: 'multipart/form-data' });
  });
});
