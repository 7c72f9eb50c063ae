import { Worker } from 'node:worker_threads';
import { FromIngestThread, fromWireError, ThreadIngestOptions, ThreadIngestResult, ToIngestThread } from './ingest-thread.protocol';

const MiB = 1024 * 1024;

export interface IngestThreadOptions {
  /** The thread is told of new bytes once per this many, so it gets one message (and sends one ack) per batch. */
  batchBytes: number;
  /** The ring's size: when the thread is this far behind the upload, the source is paused until it catches up. */
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
    // The ring holds what the thread may lag behind; it is allocated per ingest and collected with it.
    const ring = new SharedArrayBuffer(this.options.maxLagBytes);
    const session = new IngestSession(id, (msg) => worker.postMessage(msg), () => this.release(id), this.options, ring);
    this.sessions.set(id, session);
    worker.postMessage({ op: 'open', id, options, ring } satisfies ToIngestThread);
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
 * One ingest's side of the thread: `write` copies chunks into the ingest's ring (see ingest-thread.protocol) and tells
 * the thread about each batch. When the ring is full (the thread is maxLagBytes behind) the rest of the chunk waits,
 * and `write` returns a promise to wait on, so the caller pauses its source instead of queueing the whole file. The
 * result or the thread's error arrives through `end`.
 */
export class IngestSession {
  private readonly ring: Uint8Array;
  /** Bytes copied into the ring, announced to the thread, and read by it: totals since the start. */
  private written = 0;
  private sent = 0;
  private acked = 0;
  /** Chunks (or their rest) that did not fit yet, in order; `caughtUp` resolves once they are all in the ring. */
  private readonly waiting: Uint8Array[] = [];
  private caughtUp: { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } | null = null;
  private finished = false;
  private failure: Error | null = null;
  private readonly result = withResolvers<ThreadIngestResult>();

  constructor(
    private readonly id: number,
    private readonly post: (msg: ToIngestThread) => void,
    private readonly release: () => void,
    private readonly options: IngestThreadOptions,
    ring: SharedArrayBuffer,
  ) {
    this.ring = new Uint8Array(ring);
    // A result nobody waits for (an aborted ingest) must not be an unhandled rejection.
    this.result.promise.catch(() => undefined);
  }

  /** Copies `chunk` in (the caller passes the same bytes on to the upload). Undefined, or a promise to wait on. */
  write(chunk: Uint8Array): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    if (this.waiting.length === 0) chunk = this.copy(chunk);
    if (chunk.length === 0) return undefined;
    this.waiting.push(chunk);
    // Everything written must reach the thread, or its acks (which free the ring) would never come.
    this.flush();
    this.caughtUp ??= withResolvers();
    return this.caughtUp.promise;
  }

  /** Sends the last bytes; resolves with the thread's bytes, sha256 and report, or rejects with its error. */
  end(): Promise<ThreadIngestResult> {
    if (!this.finished && !this.failure) {
      if (this.waiting.length > 0) {
        this.post({ op: 'abort', id: this.id });
        this.fail(new Error('IngestSession.end was called before its last write was taken'));
      } else {
        this.flush();
        this.post({ op: 'end', id: this.id });
      }
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
      while (this.waiting.length > 0) {
        const rest = this.copy(this.waiting[0]);
        if (rest.length > 0) {
          this.waiting[0] = rest;
          this.flush();
          return;
        }
        this.waiting.shift();
      }
      this.caughtUp?.resolve();
      this.caughtUp = null;
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

  /** Copies what fits of `chunk` into the free part of the ring (wrapping at its end); returns the rest. */
  private copy(chunk: Uint8Array): Uint8Array {
    const size = this.ring.length;
    let offset = 0;
    while (offset < chunk.length && this.written - this.acked < size) {
      const at = this.written % size;
      const n = Math.min(chunk.length - offset, size - at, size - (this.written - this.acked));
      this.ring.set(chunk.subarray(offset, offset + n), at);
      this.written += n;
      offset += n;
      if (this.written - this.sent >= this.options.batchBytes) this.flush();
    }
    return chunk.subarray(offset);
  }

  /** Tells the thread how far the ring is written. */
  private flush() {
    if (this.written === this.sent) return;
    this.sent = this.written;
    this.post({ op: 'chunk', id: this.id, upTo: this.written });
  }
}

/** Promise.withResolvers, which Node 20 lacks. */
function withResolvers<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}
