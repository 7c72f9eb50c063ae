import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { DomainError } from '../../src/common/domain-error';
import { IngestOptions, ingest } from '../../src/datasets/dataset-ingest';
import { IngestThread } from '../../src/datasets/ingest-thread';
import { fromWireError, toWireError } from '../../src/datasets/ingest-thread.protocol';

const MiB = 1024 * 1024;
const options: IngestOptions = { minExamples: 1, maxErrors: 100, maxLineBytes: 64 * 1024, maxBytes: 256 * MiB, tokenBudgetBytes: 64 * 1024 };
const line = (i: number) =>
  JSON.stringify({ messages: [{ role: 'user', content: `ticket #${i}: my parcel is late` }, { role: 'assistant', content: 'shipping' }] }) + '\n';

/** `lines` chat examples as one buffer; `bad` maps a 1-based line number to the text that replaces it. */
function file(lines: number, bad: Record<number, string> = {}): Buffer {
  return Buffer.from(Array.from({ length: lines }, (_, i) => bad[i + 1] ?? line(i + 1)).join(''));
}

/** The buffer as a stream of odd-sized chunks, so lines and batches straddle chunk boundaries. */
function chunked(bytes: Buffer, size = 65_537): Readable {
  let at = 0;
  return new Readable({
    read() {
      this.push(at < bytes.length ? bytes.subarray(at, (at += size)) : null);
    },
  });
}

/** A sink that keeps only a running hash of what it was given, like an upload that checks its bytes. */
function hashingSink() {
  const hash = createHash('sha256');
  let bytes = 0;
  const sink = async (stream: Readable) => {
    for await (const chunk of stream) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  };
  return { sink, received: () => ({ bytes, sha256: hash.digest('hex') }) };
}

describe('ingest on the ingest thread', () => {
  // Small batches and lag, so a few MiB exercise many batches and the flow control.
  const thread = new IngestThread({ batchBytes: 256 * 1024, maxLagBytes: 1 * MiB, idleMs: 60_000 });
  afterAll(() => thread.close());

  it('hashes every byte as node does and passes the same bytes on to the sink', async () => {
    const bytes = file(60_000);
    const { sink, received } = hashingSink();
    const result = await ingest(chunked(bytes), options, sink, thread);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    expect(result).toMatchObject({ bytes: bytes.length, sha256, report: { valid: true, examples: 60_000, lines: 60_000 } });
    expect(received()).toEqual({ bytes: bytes.length, sha256 });
  });

  it('names the line and field of a bad line deep in a large file', async () => {
    const bytes = file(100_000, { 87_654: '{"messages": [{"role": "robot", "content": "hi"}]}\n', 99_999: '{not json\n' });
    expect(bytes.length).toBeGreaterThan(7 * MiB);
    const { report } = await ingest(chunked(bytes), options, null, thread);
    expect(report.valid).toBe(false);
    expect(report.errors.map(({ line, path, code }) => ({ line, path, code }))).toEqual([
      { line: 87_654, path: 'messages[0].role', code: 'unknown_role' },
      { line: 87_654, path: 'messages', code: 'no_assistant_turn' },
      { line: 99_999, path: null, code: 'invalid_json' },
    ]);
  });

  it('stops an upload over the size limit with payload_too_large on the file', async () => {
    const bytes = file(40_000);
    const { sink } = hashingSink();
    const err = await ingest(chunked(bytes), { ...options, maxBytes: 1 * MiB }, sink, thread).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(err).toMatchObject({ code: 'payload_too_large', param: 'file' });
  });

  it('uses one thread for every ingest, also when several run at once', async () => {
    const first = thread.threadId ?? (await ingest(chunked(file(10)), options, null, thread), thread.threadId);
    expect(first).not.toBeNull();
    const results = await Promise.all([1, 2, 3].map((n) => ingest(chunked(file(20_000 * n)), options, null, thread)));
    expect(results.map((r) => r.report.examples)).toEqual([20_000, 40_000, 60_000]);
    expect(thread.threadId).toBe(first);
  });

  it('is not left stuck by a sink that fails midway: the next ingest on the thread works', async () => {
    const body = chunked(file(60_000));
    const failing = async (stream: Readable) => {
      for await (const _ of stream) throw new Error('S3 went away');
    };
    await expect(ingest(body, options, failing, thread)).rejects.toThrow('S3 went away');
    body.destroy(); // the caller owns the body (as UploadsService and readMultipart do)
    const again = await ingest(chunked(file(1000)), options, null, thread);
    expect(again.report).toMatchObject({ valid: true, examples: 1000 });
  });

  it('pauses the source while the thread is more than maxLagBytes behind, and resumes it', async () => {
    const session = thread.open({ ...options });
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 8; i++) {
      const behind = session.write(Buffer.alloc(512 * 1024, 0x0a)); // blank lines: valid, just counted
      if (behind) waits.push(behind);
    }
    expect(waits.length).toBeGreaterThan(0);
    await Promise.all(waits);
    const result = await session.end();
    expect(result.bytes).toBe(4 * MiB);
    expect(result.report.lines).toBe(4 * MiB);
  });
});

describe('the ingest thread when it stops', () => {
  it('fails the ingests in flight when it is closed, and a later ingest starts a new thread', async () => {
    const thread = new IngestThread({ idleMs: 60_000 });
    const session = thread.open({ ...options });
    const ended = session.end();
    await thread.close();
    await expect(ended).rejects.toThrow('The ingest thread was closed');
    const result = await ingest(chunked(file(100)), options, null, thread);
    expect(result.report.examples).toBe(100);
    await thread.close();
  });

  it('ends when idle, so a process does not keep it for nothing', async () => {
    const thread = new IngestThread({ idleMs: 50 });
    await ingest(chunked(file(10)), options, null, thread);
    expect(thread.threadId).not.toBeNull();
    await new Promise((r) => setTimeout(r, 300));
    expect(thread.threadId).toBeNull();
  });
});

describe('errors across the thread boundary', () => {
  it("keep a DomainError's code, message, param and details, so the API answers as before", () => {
    const original = new DomainError('invalid_file', 'line 3, messages[1].role: unknown role', 'file', { details: { error_count: 2 } });
    const copy = fromWireError(structuredClone(toWireError(original)));
    expect(copy).toBeInstanceOf(DomainError);
    expect(copy).toMatchObject({ code: 'invalid_file', message: original.message, param: 'file', details: { error_count: 2 } });
    expect(copy.stack).toBe(original.stack);
  });

  it('keep the name, message and stack of any other error', () => {
    const original = new RangeError('out of range');
    const copy = fromWireError(structuredClone(toWireError(original)));
    expect(copy).not.toBeInstanceOf(DomainError);
    expect(copy).toMatchObject({ name: 'RangeError', message: 'out of range', stack: original.stack });
  });
});
