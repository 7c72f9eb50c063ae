import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { DomainError, ErrorCode, errorCodes } from '../domain-error';
import { newId } from '../ids';

interface Envelope {
  error: { message: string; type: string; param: string | null; code: string; [extra: string]: unknown };
}

/** An error answer: its status, OpenAI's envelope, and the headers that go with it (see `errorHeaders`). */
export interface ErrorAnswer {
  status: number;
  body: Envelope;
  headers: Record<string, string>;
}

/**
 * What an error answer tells a client about retrying, in the headers the openai SDKs read: Retry-After (seconds),
 * `retry-after-ms` where the wait is known that finely (read first: a rate limit that refills in 150 ms is retried
 * after 150 ms, not a second), and `x-should-retry: false` on a 500 (the SDK retries every 5xx; an internal error
 * would only fail again).
 */
export function errorHeaders(status: number, err: { retryAfterSeconds?: number; retryAfterMs?: number } | null): Record<string, string> {
  const headers: Record<string, string> = {};
  if (err?.retryAfterSeconds !== undefined) headers['retry-after'] = String(err.retryAfterSeconds);
  if (err?.retryAfterMs !== undefined) headers['retry-after-ms'] = String(Math.ceil(err.retryAfterMs));
  if (status === 500) headers['x-should-retry'] = 'false';
  return headers;
}

/**
 * The one place errors become HTTP. Domain errors map by code; Nest's own HTTP exceptions (unknown route, body
 * parser) keep their status; anything else is a 500 with an error id that is also in the log.
 */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('ErrorFilter');

  catch(exception: unknown, host: ArgumentsHost) {
    const res = host.switchToHttp().getResponse<Response>();
    const { status, body, headers } = this.toResponse(exception);
    if (res.headersSent) {
      res.end();
      return;
    }
    for (const name in headers) res.setHeader(name, headers[name]);
    res.status(status).json(body);
  }

  toResponse(exception: unknown): ErrorAnswer {
    if (exception instanceof DomainError) {
      const { status, type } = errorCodes[exception.code];
      const error: Envelope['error'] = { ...exception.details, message: exception.message, type: exception.type ?? type, param: exception.param, code: exception.code };
      if (status >= 500) {
        error.error_id = newId.error();
        this.logger.error({ err: exception, code: exception.code, errorId: error.error_id }, exception.message);
      }
      return { status, body: { error }, headers: errorHeaders(status, exception) };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const code: ErrorCode = status === 404 ? 'not_found' : status === 413 ? 'payload_too_large' : status < 500 ? 'invalid_request' : 'internal';
      const raw = exception.getResponse();
      const message = typeof raw === 'string' ? raw : String((raw as { message?: unknown }).message ?? exception.message);
      const error: Envelope['error'] = { message, type: errorCodes[code].type, param: null, code };
      if (status >= 500) {
        error.error_id = newId.error();
        this.logger.error({ err: exception, errorId: error.error_id }, message);
      }
      return { status, body: { error }, headers: errorHeaders(status, null) };
    }
    const errorId = newId.error();
    this.logger.error({ err: exception, errorId }, 'unhandled error');
    return {
      status: 500,
      headers: errorHeaders(500, null),
      body: {
        error: { message: `Internal server error (error id ${errorId})`, type: 'server_error', param: null, code: 'internal', error_id: errorId },
      },
    };
  }
}
