// The normalisation that `npm run check:openai-contract` applies to OpenAI's published document (OpenAPI 3.0
// habits inside 3.1), proven on small documents of the same shapes, so a clone without the document still tests it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

type Contract = { streamedCompletionChunkRef: string; validate: (ref: string, body: unknown) => { path: string; message: string }[]; routeSchemaRef: (m: string, t: string, s: number, c?: string) => string | undefined };
const load = async (doc: unknown): Promise<Contract> => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'contract-')), 'doc.json');
  fs.writeFileSync(file, JSON.stringify(doc));
  // The script's library is plain CommonJS, shared with scripts/check-openai-contract.mjs.
  const lib = require(path.resolve(__dirname, '../../scripts/lib/openai-contract.cjs')) as { loadContract: (f: string) => Contract };
  return lib.loadContract(file);
};

const doc = {
  openapi: '3.1.0',
  info: { version: 't' },
  paths: { '/files': { post: { responses: { '200': { content: { 'application/json': { schema: { $ref: '#/components/schemas/File' } } } } } } } },
  components: {
    schemas: {
      File: {
        type: 'object',
        properties: { id: { type: 'string' }, expires_at: { type: 'integer' }, note: { type: 'string', nullable: true } },
        required: ['id'],
      },
      Upload: {
        type: 'object',
        properties: { file: { allOf: [{ $ref: '#/components/schemas/File' }, { nullable: true, description: 'once completed' }] } },
      },
      Temp: { type: 'number', minimum: 0, exclusiveMinimum: true, maximum: 2 },
      CreateCompletionResponse: {
        type: 'object',
        properties: { choices: { type: 'array', items: { type: 'object', required: ['finish_reason'], properties: { finish_reason: { type: 'string', enum: ['stop', 'length'] } } } } },
      },
    },
  },
};

describe('OpenAI document normalisation', () => {
  let c: Contract;
  beforeAll(async () => {
    c = await load(doc);
  });

  it('finds the schema the document gives a route', () => {
    expect(c.routeSchemaRef('POST', '/files', 200)).toBe('#/components/schemas/File');
    expect(c.routeSchemaRef('POST', '/files', 201)).toBeUndefined();
  });

  it('a null where the document types integer fails with the JSON path; absent passes', () => {
    expect(c.validate('#/components/schemas/File', { id: 'f' })).toEqual([]);
    const problems = c.validate('#/components/schemas/File', { id: 'f', expires_at: null });
    expect(problems.map((p) => p.path)).toEqual(['$.expires_at']);
  });

  it('nullable: true becomes a union with null, beside a type and inside an allOf member', () => {
    expect(c.validate('#/components/schemas/File', { id: 'f', note: null })).toEqual([]);
    expect(c.validate('#/components/schemas/Upload', { file: null })).toEqual([]);
    expect(c.validate('#/components/schemas/Upload', { file: { id: 'f' } })).toEqual([]);
    expect(c.validate('#/components/schemas/Upload', { file: { expires_at: 1 } }).map((p) => p.path)).toContain('$.file');
  });

  it('a boolean exclusiveMinimum becomes the numeric keyword', () => {
    expect(c.validate('#/components/schemas/Temp', 0)).not.toEqual([]);
    expect(c.validate('#/components/schemas/Temp', 0.5)).toEqual([]);
    expect(c.validate('#/components/schemas/Temp', 3)).not.toEqual([]);
  });

  it("streamed completion chunks may carry finish_reason null (OpenAI's own stream does); answers may not", () => {
    const chunk = { choices: [{ finish_reason: null }] };
    expect(c.validate('#/components/schemas/CreateCompletionResponse', chunk)).not.toEqual([]);
    expect(c.validate(c.streamedCompletionChunkRef, chunk)).toEqual([]);
    expect(c.validate(c.streamedCompletionChunkRef, { choices: [{ finish_reason: 'done' }] })).not.toEqual([]);
    expect(c.validate(c.streamedCompletionChunkRef, { choices: [{}] })).not.toEqual([]);
  });
});
