import { createHash, Hash } from 'node:crypto';
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
  private bytes = 0;

  constructor(options: ThreadIngestOptions) {
    this.validator = new DatasetValidator(options);
    this.splitter = new LineSplitter(options.maxLineBytes, this.validator.onLine, this.validator.onBytes);
  }

  push(chunk: Buffer): number {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    this.splitter.push(chunk);
    return this.bytes;
  }

  end() {
    this.splitter.end();
    return { bytes: this.bytes, sha256: this.hash.digest('hex'), report: this.validator.report(this.splitter.lines) };
  }
}

const port = parentPort;
if (!port) throw new Error('ingest-thread.worker runs in a worker thread (see IngestThread)');
const ingests = new Map<number, ThreadIngest>();
const send = (msg: FromIngestThread, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

port.on('message', (msg: ToIngestThread) => {
  if (msg.op === 'open') {
    ingests.set(msg.id, new ThreadIngest(msg.options));
    return;
  }
  const ingest = ingests.get(msg.id);
  // Chunks still queued for an ingest that failed or was aborted are dropped.
  if (!ingest) return;
  try {
    switch (msg.op) {
      case 'chunk':
        // The splitter copies what it keeps of a chunk, so the buffer can go back at once.
        send({ op: 'ack', id: msg.id, bytes: ingest.push(Buffer.from(msg.data)), data: msg.data }, [msg.data]);
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
