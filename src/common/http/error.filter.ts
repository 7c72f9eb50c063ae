import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { DomainError, ErrorCode, errorCodes } from '../domain-error';
import { newId } from '../ids';

interface Envelope {
  error: { message: string; type: string; param: string | null; code: string; [extra: string]: unknown };
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
    const { status, body, retryAfter } = this.toResponse(exception);
    if (res.headersSent) {
      res.end();
      return;
    }
    if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfter));
    // The openai SDK retries 5xx; tell it not to where a retry is pointless.
    if (status === 500) res.setHeader('x-should-retry', 'false');
    res.status(status).json(body);
  }

  toResponse(exception: unknown): { status: number; body: Envelope; retryAfter?: number } {
    if (exception instanceof DomainError) {
      const { status, type } = errorCodes[exception.code];
      const error: Envelope['error'] = { ...exception.details, message: exception.message, type: exception.type ?? type, param: exception.param, code: exception.code };
      if (status >= 500) {
        error.error_id = newId.error();
        this.logger.error({ err: exception, code: exception.code, errorId: error.error_id }, exception.message);
      }
      return { status, retryAfter: exception.retryAfterSeconds, body: { error } };
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
      return { status, body: { error } };
    }
    const errorId = newId.error();
    this.logger.error({ err: exception, errorId }, 'unhandled error');
    return {
      status: 500,
      body: {
        error: { message: `Internal server error (error id ${errorId})`, type: 'server_error', param: null, code: 'internal', error_id: errorId },
      },
    };
  }
}
