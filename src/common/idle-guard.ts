import { PassThrough, pipeline, type Readable } from 'node:stream';

/**
 * `source` passed through unchanged, destroyed with `onIdle()`'s error when it sends nothing for `ms` while its
 * reader is waiting for bytes: a download that stalls half-way fails instead of holding its worker for ever.
 *
 * Time the reader takes does not count. When the reader is the slow side (a large file flowing into S3), the bytes
 * it has not taken yet sit in this stream's buffers (and the source is paused by the pipe): that is backpressure,
 * not a stalled source, and the clock starts again once the buffers are empty.
 *
 * One timer per stream, re-armed when it fires, rather than one reset per chunk: a chunk only notes the time.
 */
export function idleGuard(source: Readable, ms: number, onIdle: () => Error): Readable {
  const guard = new PassThrough();
  let lastByteAt = Date.now();
  source.on('data', () => (lastByteAt = Date.now()));
  const check = () => {
    if (guard.destroyed) return;
    const readerIsBehind = guard.readableLength > 0 || guard.writableLength > 0;
    if (readerIsBehind) lastByteAt = Date.now();
    const quietFor = Date.now() - lastByteAt;
    if (quietFor >= ms) return void guard.destroy(onIdle());
    timer = setTimeout(check, ms - quietFor);
    timer.unref();
  };
  let timer = setTimeout(check, ms);
  timer.unref();
  const stop = () => clearTimeout(timer);
  guard.once('close', stop);
  // Everything has arrived: how long the reader then takes is its own business.
  source.once('end', stop);
  // The guard destroyed (idle, or its reader gave up) destroys the source too, which aborts its request.
  pipeline(source, guard, () => undefined);
  return guard;
}
