import { createHash, Hash } from 'node:crypto';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { FromIngestThread, ThreadIngestOptions, toWireError, ToIngestThread } from './ingest-thread.protocol';
import { DatasetValidator } from './validation/dataset-validator';
import { LineSplitter } from './validation/line-splitter';

/**
 * The ingest thread (started by IngestThread): hashes, splits and validates the chunks of each open ingest, so this
 * CPU work does not hold up the main thread's upload of the same bytes. It keeps one line and the validator's
 * counters per ingest, like the single-thread ingest did.
 */
class ThreadIngest {
  private readonly hash: Hash = createHash('sha256');
  private readonly validator: DatasetValidator;
  private readonly splitter: LineSplitter;
  private readonly ring: Buffer;
  private bytes = 0;

  constructor(options: ThreadIngestOptions, ring: SharedArrayBuffer) {
    this.validator = new DatasetValidator(options);
    this.splitter = new LineSplitter(options.maxLineBytes, this.validator.onLine, this.validator.onBytes);
    this.ring = Buffer.from(ring);
  }

  /** Reads the ring up to the total `upTo` (in one or two pieces, where it wraps); returns the bytes read so far. */
  readTo(upTo: number): number {
    while (this.bytes < upTo) {
      const at = this.bytes % this.ring.length;
      const piece = this.ring.subarray(at, Math.min(this.ring.length, at + upTo - this.bytes));
      this.hash.update(piece);
      // The splitter copies what it keeps of a piece (a line's start), so the main thread may then write over it.
      this.splitter.push(piece);
      this.bytes += piece.length;
    }
    return this.bytes;
  }

  end() {
    this.splitter.end();
    return { bytes: this.bytes, sha256: this.hash.digest('hex'), report: this.validator.report(this.splitter.lines) };
  }
}

const port = parentPort;
if (!port) throw new Error('ingest-thread.worker runs in a worker thread (see IngestThread)');

/**
 * Validation is bulk work, so this thread runs at a lower priority (nice 10): when the cores are busy, the event loop
 * of the process (answering requests, feeding the very upload being validated) and an object store on the same host
 * go first, and the thread uses what they leave; a full ring then pauses the upload until it catches up. On Linux
 * the nice value is per thread and pid 0 names the calling thread, so the rest of the process keeps its priority.
 */
const INGEST_THREAD_NICE = 10;
try {
  setPriority(0, INGEST_THREAD_NICE);
} catch {
  // Not permitted or not supported here: the thread runs at the process's priority.
}

const ingests = new Map<number, ThreadIngest>();
const send = (msg: FromIngestThread) => port.postMessage(msg);

port.on('message', (msg: ToIngestThread) => {
  if (msg.op === 'open') {
    ingests.set(msg.id, new ThreadIngest(msg.options, msg.ring));
    return;
  }
  const ingest = ingests.get(msg.id);
  // Chunks still queued for an ingest that failed or was aborted are dropped.
  if (!ingest) return;
  try {
    switch (msg.op) {
      case 'chunk':
        send({ op: 'ack', id: msg.id, bytes: ingest.readTo(msg.upTo) });
        return;
      case 'end':
        ingests.delete(msg.id);
        send({ op: 'done', id: msg.id, result: ingest.end() });
        return;
      case 'abort':
        ingests.delete(msg.id);
        return;
    }
  } catch (err) {
    ingests.delete(msg.id);
    send({ op: 'error', id: msg.id, error: toWireError(err) });
  }
});
