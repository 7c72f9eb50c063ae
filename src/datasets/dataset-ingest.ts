import { createHash } from 'node:crypto';
import { Readable, Transform, TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DomainError } from '../common/domain-error';
import { DatasetValidator, ValidationReport, ValidatorOptions } from './validation/dataset-validator';
import { LineSplitter } from './validation/line-splitter';

export interface IngestOptions extends ValidatorOptions {
  maxLineBytes: number;
  maxBytes: number;
}

export interface IngestResult {
  bytes: number;
  sha256: string;
  report: ValidationReport;
}

/**
 * One pass over a byte stream: count, hash, split into lines and validate, while the same chunks flow on to `sink`
 * (an S3 multipart upload) or nowhere (a dry run). Only one line and the validator's counters are ever held.
 */
export async function ingest(
  body: Readable,
  options: IngestOptions,
  sink: ((stream: Readable) => Promise<void>) | null,
): Promise<IngestResult> {
  const validator = new DatasetValidator(options);
  const splitter = new LineSplitter(options.maxLineBytes, validator.onLine);
  const hash = createHash('sha256');
  let bytes = 0;
  const maxBytes = options.maxBytes;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        done(new DomainError('payload_too_large', `The file is larger than the limit of ${maxBytes} bytes`, 'file'));
        return;
      }
      hash.update(chunk);
      try {
        splitter.push(chunk);
      } catch (err) {
        done(err as Error);
        return;
      }
      done(null, sink ? chunk : undefined);
    },
    flush(done) {
      try {
        splitter.end();
      } catch (err) {
        done(err as Error);
        return;
      }
      done();
    },
  });
  if (sink) {
    // Both sides must finish: the pipeline ends the tap; the sink consumes it.
    // When the sink fails the tap is no longer read and the body's side stalls; the caller owns `body` and ends it
    // (an HTTP request is drained by readMultipart, an assembled upload is destroyed by UploadsService).
    const sunk = sink(tap);
    await Promise.all([pipeline(body, tap), sunk]);
  } else {
    await pipeline(body, tap, new Writable({ write: (_c, _e, done) => done() }));
  }
  return { bytes, sha256: hash.digest('hex'), report: validator.report(splitter.lines) };
}
