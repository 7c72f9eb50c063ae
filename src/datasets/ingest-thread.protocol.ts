import { DomainError, ErrorCode } from '../common/domain-error';
import { ValidationReport, ValidatorOptions } from './validation/dataset-validator';

/**
 * The messages between the main thread and the ingest thread; `id` names one ingest, so several can share a thread.
 *
 * The bytes themselves go through `ring`, a SharedArrayBuffer per ingest that both threads see: the main thread copies
 * each chunk in and says how far it has written (`chunk`), the thread reads up to there and says how far it has read
 * (`ack`), and the main thread reuses that space. Byte counts are totals since the start of the ingest; the position
 * in the ring is the count modulo its size. (Sending each batch as a transferred ArrayBuffer instead made both
 * threads' heaps account a new external buffer per batch, and collect garbage for it.)
 */
export type ToIngestThread =
  | { op: 'open'; id: number; options: ThreadIngestOptions; ring: SharedArrayBuffer }
  | { op: 'chunk'; id: number; upTo: number }
  | { op: 'end'; id: number }
  | { op: 'abort'; id: number };

export type FromIngestThread =
  /** Sent after each chunk: how many bytes of this ingest the thread has hashed and validated so far. */
  | { op: 'ack'; id: number; bytes: number }
  | { op: 'done'; id: number; result: ThreadIngestResult }
  | { op: 'error'; id: number; error: WireError };

export interface ThreadIngestOptions extends ValidatorOptions {
  maxLineBytes: number;
}

export interface ThreadIngestResult {
  bytes: number;
  sha256: string;
  report: ValidationReport;
}

/**
 * An error as it crosses the thread boundary. Structured clone keeps only an Error's name, message and stack, so a
 * DomainError's code, param and details travel as fields and the main thread builds the same DomainError again:
 * the API answers with the same status and names the same field as when the error was thrown in the request.
 */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  code?: ErrorCode;
  param?: string | null;
  details?: Record<string, unknown>;
  retryAfterSeconds?: number;
}

export function toWireError(err: unknown): WireError {
  if (err instanceof DomainError) {
    const { name, message, stack, code, param, details, retryAfterSeconds } = err;
    return { name, message, stack, code, param, details, retryAfterSeconds };
  }
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { name: 'Error', message: String(err) };
}

export function fromWireError(wire: WireError): Error {
  const err = wire.code
    ? new DomainError(wire.code, wire.message, wire.param ?? null, { details: wire.details, retryAfterSeconds: wire.retryAfterSeconds })
    : Object.assign(new Error(wire.message), { name: wire.name });
  // The worker's stack says where it really failed; the main thread's would only show the message handler.
  if (wire.stack) err.stack = wire.stack;
  return err;
}
