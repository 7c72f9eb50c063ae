import { makeTicketDataset } from '../fixtures/tiny-task';
import { startTestApp, TestApp } from '../support/app';

/** A small seeded PRNG so a failing case can be reproduced from its number. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INSERTS = ['{', '}', '[', ']', '"', ',', ':', '\\', '\\u', '\\ud800', 'null', '<|start|>', '<|channel|>', '\n', '\r\n', '\u0000', '\t', '\u2028', '"role":"bot"', '"weight":2', '{"messages":[]}', '[]', '1e999', '-', '🙂'];
const BAD_BYTES = [Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0xe2, 0x82]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80])];

/** One corrupted copy of `base`: 1 to 4 random mutations of bytes, lines and structure. */
function corrupt(base: Buffer, random: () => number): Buffer {
  let buf = base;
  const at = () => Math.floor(random() * (buf.length + 1));
  const mutations = 1 + Math.floor(random() * 4);
  for (let m = 0; m < mutations; m++) {
    const i = at();
    switch (Math.floor(random() * 8)) {
      case 0: // flip a byte
        if (buf.length) buf = Buffer.concat([buf.subarray(0, i), Buffer.from([Math.floor(random() * 256)]), buf.subarray(i + 1)]);
        break;
      case 1: // insert a token that breaks JSON, roles, weights or harmony
        buf = Buffer.concat([buf.subarray(0, i), Buffer.from(INSERTS[Math.floor(random() * INSERTS.length)]), buf.subarray(i)]);
        break;
      case 2: // invalid UTF-8
        buf = Buffer.concat([buf.subarray(0, i), BAD_BYTES[Math.floor(random() * BAD_BYTES.length)], buf.subarray(i)]);
        break;
      case 3: // delete a span
        buf = Buffer.concat([buf.subarray(0, i), buf.subarray(Math.min(buf.length, i + 1 + Math.floor(random() * 200)))]);
        break;
      case 4: // truncate
        buf = buf.subarray(0, i);
        break;
      case 5: // duplicate a span (merges or splits lines)
        buf = Buffer.concat([buf.subarray(0, i), buf.subarray(i, i + Math.floor(random() * 300)), buf.subarray(i)]);
        break;
      case 6: // a line over the size limit
        buf = Buffer.concat([buf.subarray(0, i), Buffer.from(`{"messages":[{"role":"user","content":"${'x'.repeat(70 * 1024)}"}]}\n`), buf.subarray(i)]);
        break;
      case 7: // drop every newline after a point
        buf = Buffer.concat([buf.subarray(0, i), Buffer.from(buf.subarray(i).toString('latin1').replace(/\n/g, ' '), 'latin1')]);
        break;
    }
  }
  return buf;
}

/**
 * Fuzz: 1,000 randomly corrupted JSONL files through the API (the dry run for most, /v1/files and the native upload
 * for every tenth): never a 5xx, the process stays up, and every rejection names a line, except the two file-level
 * verdicts (no examples, too few examples), which name the count instead.
 */
describe('dataset fuzz (e2e)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ LORAPLANE_ROLE: 'api', MAX_LINE_BYTES: String(64 * 1024) });
  });
  afterAll(async () => {
    await app?.close();
  });

  async function post(path: string, file: Buffer, extra: Record<string, string> = {}) {
    const form = new FormData();
    form.append('file', new Blob([file]), 'fuzz.jsonl');
    for (const [k, v] of Object.entries(extra)) form.append(k, v);
    const res = await fetch(`${app.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${app.apiKey}` }, body: form });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  }

  const FILE_LEVEL = /the file has no examples|the file has \d+ examples; at least \d+ are required/;

  it('1,000 corrupted files: no 5xx, no crash, every rejection names a line', async () => {
    const base = Buffer.from(makeTicketDataset({ n: 14, seed: 2024 }));
    const random = rng(20261125);
    const tally = { valid: 0, rejected: 0, viaFiles: 0, fileLevel: 0 };
    for (let n = 0; n < 1000; n++) {
      const file = corrupt(base, random);
      const where = `case ${n}`;
      if (n % 10 === 0) {
        // The OpenAI facade and the native upload store or reject; a rejection is a 400 naming the line.
        const viaFiles = await post('/v1/files', file, { purpose: 'fine-tune' });
        tally.viaFiles++;
        expect({ where, status: viaFiles.status < 500 }).toEqual({ where, status: true });
        if (viaFiles.status !== 200 && viaFiles.status !== 201) {
          expect({ where, status: viaFiles.status }).toEqual({ where, status: 400 });
          const message = viaFiles.body.error.message as string;
          if (!FILE_LEVEL.test(message)) expect({ where, message }).toEqual({ where, message: expect.stringMatching(/line \d+/) });
          for (const e of viaFiles.body.error.errors) if (e.line === null) expect({ where, message: e.message }).toEqual({ where, message: expect.stringMatching(FILE_LEVEL) });
        }
        const native = await post('/v1/datasets', file);
        expect({ where, status: native.status }).toEqual({ where, status: 200 });
        continue;
      }
      const res = await post('/v1/datasets/validate', file);
      expect({ where, status: res.status }).toEqual({ where, status: 200 });
      if (res.body.valid) {
        tally.valid++;
        continue;
      }
      tally.rejected++;
      expect(res.body.error_count).toBeGreaterThan(0);
      for (const e of res.body.errors) {
        if (e.line === null) {
          tally.fileLevel++;
          expect({ where, message: e.message }).toEqual({ where, message: expect.stringMatching(FILE_LEVEL) });
        } else {
          expect({ where, line: Number.isInteger(e.line) && e.line >= 1 }).toEqual({ where, line: true });
          expect(typeof e.code).toBe('string');
        }
      }
    }
    // The corruption is real: most files are rejected.
    expect(tally.rejected).toBeGreaterThan(700);
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
    console.info(`fuzz: ${JSON.stringify(tally)}`);
  }, 180_000);
});
