import { Worker } from 'node:worker_threads';
import { FromIngestThread, fromWireError, ThreadIngestOptions, ThreadIngestResult, ToIngestThread } from './ingest-thread.protocol';

const MiB = 1024 * 1024;

export interface IngestThreadOptions {
  /** Chunks are copied into batches of this size, so the thread gets one message (and sends one ack) per batch. */
  batchBytes: number;
  /** When the thread is this far behind the upload, the source is paused until it catches up. */
  maxLagBytes: number;
  /** An idle thread ends after this long, so a process (or a jest file) does not keep one (and a tokenizer) for nothing. */
  idleMs: number;
}

const DEFAULTS: IngestThreadOptions = { batchBytes: 1 * MiB, maxLagBytes: 16 * MiB, idleMs: 30_000 };

/**
 * Under jest this name resolves to test/support/ingest-thread.worker.js (jest.config maps it), because jest compiles
 * TypeScript in memory and a worker thread can only load JavaScript; in the build it is the compiled file beside
 * this one.
 */
const WORKER_ENTRY = require.resolve('./ingest-thread.worker');

/**
 * One worker thread that hashes and validates the bytes of every ingest in this process, so the main thread keeps
 * feeding the S3 upload while JSON.parse and the validator run (they cost as much CPU as the upload itself). Started
 * at the first ingest and kept while ingests follow each other; several ingests share it, each with its own session.
 */
export class IngestThread {
  private worker: Worker | null = null;
  private readonly sessions = new Map<number, IngestSession>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly options: IngestThreadOptions;

  constructor(options: Partial<IngestThreadOptions> = {}) {
    this.options = { ...DEFAULTS, ...options };
  }

  open(options: ThreadIngestOptions): IngestSession {
    const worker = this.start();
    const id = this.nextId++;
    const session = new IngestSession(id, (msg, transfer) => worker.postMessage(msg, transfer), () => this.release(id), this.options);
    this.sessions.set(id, session);
    worker.postMessage({ op: 'open', id, options } satisfies ToIngestThread);
    return session;
  }

  /** The running thread's id, null when none runs (the tests check that ingests share one). */
  get threadId(): number | null {
    return this.worker?.threadId ?? null;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.stop(new Error('The ingest thread was closed'));
    await worker?.terminate();
  }

  private start(): Worker {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.worker) {
      this.worker.ref();
      return this.worker;
    }
    const worker = new Worker(WORKER_ENTRY);
    worker.on('message', (msg: FromIngestThread) => this.sessions.get(msg.id)?.receive(msg));
    // A crashed thread fails the ingests it had; the next ingest starts a new one.
    worker.on('error', (err) => this.worker === worker && this.stop(new Error(`The ingest thread failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => this.worker === worker && this.stop(new Error(`The ingest thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private stop(err: Error) {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.worker = null;
    for (const session of this.sessions.values()) session.fail(err);
    this.sessions.clear();
  }

  private release(id: number) {
    this.sessions.delete(id);
    if (this.sessions.size > 0 || !this.worker) return;
    // Idle: the thread must not keep the process alive, and it ends if no ingest comes for a while.
    const worker = this.worker;
    worker.unref();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.worker !== worker || this.sessions.size > 0) return;
      this.worker = null;
      void worker.terminate();
    }, this.options.idleMs).unref();
  }
}

/**
 * One ingest's side of the thread: `write` copies chunks into batches and sends them over; when the thread falls more
 * than maxLagBytes behind it returns a promise to wait on, so the caller pauses its source instead of queueing the
 * whole file in the thread's inbox. The result or the thread's error arrives through `end`.
 */
export class IngestSession {
  private batch: Uint8Array;
  /** Batch buffers the thread handed back, reused so a long upload allocates only about maxLag / batch of them. */
  private readonly spare: ArrayBuffer[] = [];
  private filled = 0;
  private sent = 0;
  private acked = 0;
  private finished = false;
  private failure: Error | null = null;
  private caughtUp: { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } | null = null;
  private readonly result = withResolvers<ThreadIngestResult>();

  constructor(
    private readonly id: number,
    private readonly post: (msg: ToIngestThread, transfer?: ArrayBuffer[]) => void,
    private readonly release: () => void,
    private readonly options: IngestThreadOptions,
  ) {
    this.batch = new Uint8Array(options.batchBytes);
    // A result nobody waits for (an aborted ingest) must not be an unhandled rejection.
    this.result.promise.catch(() => undefined);
  }

  /** Queues `chunk` (copied: the caller passes the same bytes on to the upload). Undefined or a promise to wait on. */
  write(chunk: Uint8Array): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(chunk.length - offset, this.batch.length - this.filled);
      this.batch.set(chunk.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === this.batch.length) this.flush();
    }
    if (this.sent - this.acked <= this.options.maxLagBytes) return undefined;
    this.caughtUp ??= withResolvers();
    return this.caughtUp.promise;
  }

  /** Sends the last bytes; resolves with the thread's bytes, sha256 and report, or rejects with its error. */
  end(): Promise<ThreadIngestResult> {
    if (!this.finished && !this.failure) {
      this.flush();
      this.post({ op: 'end', id: this.id });
    }
    return this.result.promise;
  }

  /** The upload failed or the source broke: the thread drops this ingest and nothing waits on it any more. */
  abort() {
    if (this.finished || this.failure) return;
    this.post({ op: 'abort', id: this.id });
    this.fail(new Error('The ingest was aborted'));
  }

  receive(msg: FromIngestThread) {
    if (msg.op === 'ack') {
      this.acked = msg.bytes;
      if (msg.data.byteLength === this.options.batchBytes) this.spare.push(msg.data);
      if (this.caughtUp && this.sent - this.acked <= this.options.maxLagBytes) {
        this.caughtUp.resolve();
        this.caughtUp = null;
      }
    } else if (msg.op === 'done') {
      this.finished = true;
      this.release();
      this.result.resolve(msg.result);
    } else {
      this.fail(fromWireError(msg.error));
    }
  }

  fail(err: Error) {
    if (this.finished || this.failure) return;
    this.failure = err;
    this.release();
    this.caughtUp?.reject(err);
    this.caughtUp = null;
    this.result.reject(err);
  }

  /** Hands the batch over (transferred, not copied again); only the last, partial batch is cut to its length. */
  private flush() {
    if (this.filled === 0) return;
    const full = this.filled === this.batch.length;
    const data = (full ? this.batch.buffer : this.batch.buffer.slice(0, this.filled)) as ArrayBuffer;
    this.sent += this.filled;
    this.filled = 0;
    if (full) this.batch = new Uint8Array(this.spare.pop() ?? new ArrayBuffer(this.options.batchBytes));
    this.post({ op: 'chunk', id: this.id, data }, [data]);
  }
}

/** Promise.withResolvers, which Node 20 lacks. */
function withResolvers<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}
