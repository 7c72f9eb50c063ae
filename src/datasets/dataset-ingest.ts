import { Readable, Transform, TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DomainError } from '../common/domain-error';
import { IngestThread } from './ingest-thread';
import { ThreadIngestResult } from './ingest-thread.protocol';
import { ValidatorOptions } from './validation/dataset-validator';

export interface IngestOptions extends ValidatorOptions {
  maxLineBytes: number;
  maxBytes: number;
}

export type IngestResult = ThreadIngestResult;

/** The process's ingest thread, shared by every ingest (see IngestThread). */
export const ingestThread = new IngestThread();

/**
 * One pass over a byte stream: count, hash, split into lines and validate, while the same chunks flow on to `sink`
 * (an S3 multipart upload) or nowhere (a dry run). Hashing and validation run on `thread`, which gets a copy of each
 * chunk; the source is paused only when the thread falls too far behind. Only one line and the validator's counters
 * are ever held, plus at most the thread's lag in flight.
 */
export async function ingest(
  body: Readable,
  options: IngestOptions,
  sink: ((stream: Readable) => Promise<void>) | null,
  thread: IngestThread = ingestThread,
): Promise<IngestResult> {
  const { maxBytes, ...threadOptions } = options;
  const session = thread.open(threadOptions);
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      // Counted here, not in the thread, so an over-size upload stops at the chunk that crosses the limit.
      bytes += chunk.length;
      if (bytes > maxBytes) {
        done(new DomainError('payload_too_large', `The file is larger than the limit of ${maxBytes} bytes`, 'file'));
        return;
      }
      let behind: Promise<void> | undefined;
      try {
        behind = session.write(chunk);
      } catch (err) {
        done(err as Error);
        return;
      }
      if (sink) this.push(chunk);
      // The upload already has this chunk; only the next read waits for the thread to catch up.
      if (behind) behind.then(() => done(), done);
      else done();
    },
  });
  try {
    if (sink) {
      // Both sides must finish: the pipeline ends the tap; the sink consumes it.
      // When the sink fails the tap is no longer read and the body's side stalls; the caller owns `body` and ends it
      // (an HTTP request is drained by readMultipart, an assembled upload is destroyed by UploadsService).
      const sunk = sink(tap);
      await Promise.all([pipeline(body, tap), sunk]);
    } else {
      await pipeline(body, tap, new Writable({ write: (_c, _e, done) => done() }));
    }
    return await session.end();
  } catch (err) {
    session.abort();
    throw err;
  }
}
