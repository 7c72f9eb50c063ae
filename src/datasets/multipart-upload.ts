import busboy from 'busboy';
import type { Request } from 'express';
import { Readable } from 'node:stream';
import { DomainError } from '../common/domain-error';

export interface MultipartResult<T> {
  fields: Record<string, string>;
  file: { fieldName: string; filename: string; result: T } | null;
}

/**
 * Parses a multipart request, handing the one file part to `onFile` as a stream while it arrives. Form fields may
 * come before or after the file (the openai SDK sends `file` first), so the caller decides about them at the end.
 * If anything fails after `onFile` produced a result, `cleanup` gets it so nothing half-stored remains.
 */
export function readMultipart<T>(
  req: Request,
  fileField: string,
  /** `fields`: the form fields sent before the file (a caller that needs its options first requires that order). */
  onFile: (filename: string, stream: Readable, fields: Readonly<Record<string, string>>) => Promise<T>,
  cleanup: (result: T) => Promise<void>,
): Promise<MultipartResult<T>> {
  const contentType = req.headers['content-type'] ?? '';
  if (!contentType.toLowerCase().startsWith('multipart/form-data')) {
    return Promise.reject(new DomainError('invalid_request', 'Expected a multipart/form-data body', 'file'));
  }
  return new Promise((resolve, reject) => {
    const fields: Record<string, string> = {};
    let filePromise: Promise<{ fieldName: string; filename: string; result: T }> | null = null;
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      req.unpipe(parser);
      req.resume(); // drain, so the client gets our answer instead of a reset
      if (filePromise) filePromise.then((f) => cleanup(f.result), () => undefined).finally(() => reject(err));
      else reject(err);
    };
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { files: 1, fields: 20, fieldSize: 64 * 1024 } });
    } catch (err) {
      reject(new DomainError('invalid_request', `Malformed multipart body: ${(err as Error).message}`, 'file'));
      return;
    }
    parser.on('field', (name, value, info) => {
      // A silently cut value would be read as a shorter one.
      if (info.valueTruncated) fail(new DomainError('invalid_request', `The form field '${name}' is longer than ${64 * 1024} bytes`, name));
      fields[name] = value;
    });
    parser.on('file', (name, stream, info) => {
      if (name !== fileField || filePromise) {
        stream.resume();
        if (name !== fileField) fail(new DomainError('invalid_request', `Unexpected file field '${name}'; send the file as '${fileField}'`, name));
        return;
      }
      const filename = info.filename || 'upload.jsonl';
      const promise = onFile(filename, stream, { ...fields }).then((result) => ({ fieldName: name, filename, result }));
      promise.catch(fail);
      filePromise = promise;
    });
    parser.on('filesLimit', () => fail(new DomainError('invalid_request', 'Send exactly one file', fileField)));
    parser.on('error', (err) => fail(new DomainError('invalid_request', `Malformed multipart body: ${(err as Error).message}`, 'file')));
    parser.on('close', () => {
      if (failed) return;
      if (!filePromise) {
        resolve({ fields, file: null });
        return;
      }
      filePromise.then((file) => resolve({ fields, file }), fail);
    });
    req.on('aborted', () => fail(new DomainError('invalid_request', 'The upload was interrupted', 'file')));
    req.pipe(parser);
  });
}
