import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { contractJsonSchemas, jobSpecSchema, trainerEventSchema } from '../../src/training/contract/job-contract';

const SCHEMA_DIR = resolve(__dirname, '../../jobs/schema');
const committed = (name: string) => JSON.parse(readFileSync(join(SCHEMA_DIR, name), 'utf8'));

/**
 * jobs/schema/*.schema.json are what non-TypeScript trainers validate against (the Python trainer's tests do). They
 * must be exactly what zod says, or the two sides of the contract drift apart.
 */
describe('contract JSON Schema files', () => {
  it.each([
    ['job-spec.schema.json', jobSpecSchema],
    ['trainer-event.schema.json', trainerEventSchema],
  ] as const)('%s equals z.toJSONSchema of the zod schema (regenerate: npm run contract:schema)', (name, schema) => {
    const { $id, title, ...rest } = committed(name);
    expect(rest).toEqual(z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input' }));
    expect($id).toBe(`https://loraplane.dev/contract/v1/${name}`);
    expect(title).toMatch(/^loraplane trainer contract v1: /);
  });

  it('has one committed file per generated schema, byte for byte as the generator writes it', () => {
    const generated = contractJsonSchemas();
    expect(readdirSync(SCHEMA_DIR).filter((n) => n.endsWith('.schema.json')).sort()).toEqual(Object.keys(generated).sort());
    for (const [name, schema] of Object.entries(generated)) {
      expect(readFileSync(join(SCHEMA_DIR, name), 'utf8')).toBe(`${JSON.stringify(schema, null, 2)}\n`);
    }
  });

  it('keeps the v1 additions optional: a spec without them is valid, and unknown fields are allowed', () => {
    const spec = committed('job-spec.schema.json');
    expect(spec.required).not.toEqual(expect.arrayContaining(['checkpoint_every_steps']));
    expect(spec.required).not.toEqual(expect.arrayContaining(['resume_from']));
    expect(spec.required).not.toEqual(expect.arrayContaining(['stop_grace_seconds']));
    expect(spec.properties).toHaveProperty('resume_from');
    expect(spec.additionalProperties).toBeUndefined();
  });
});
