import { DomainError } from '../common/domain-error';

export interface ImportScope {
  /** The deployment's bucket: the only one loraplane reads. */
  bucket: string;
  projectId: string;
  /** ADAPTER_IMPORT_PREFIXES: shared drop zones any project may import from. */
  shared: string[];
}

/**
 * The key prefix an `s3://bucket/prefix/` import may read, or a 400 naming `s3_prefix`. loraplane's own credentials
 * can read every tenant's bytes, so the prefix must lie under the caller's project or a shared import prefix, and
 * segments that a file-backed S3 server could resolve ('..') are refused outright.
 */
export function importPrefix(uri: string, scope: ImportScope): string {
  const bad = (why: string) => new DomainError('invalid_request', `Invalid 's3_prefix': ${why}`, 's3_prefix');
  const match = /^s3:\/\/([^/]+)\/([\s\S]+)$/.exec(uri);
  if (!match) throw bad('expected s3://<bucket>/<prefix>/');
  const [, bucket, rest] = match;
  if (bucket !== scope.bucket) throw bad(`imports read only from this deployment's bucket '${scope.bucket}'`);
  const prefix = rest.endsWith('/') ? rest : `${rest}/`;
  if (/[\u0000-\u001f\u007f\\]/.test(prefix)) throw bad('control characters and backslashes are not allowed');
  if (prefix.slice(0, -1).split('/').some((s) => s === '' || s === '.' || s === '..')) throw bad("empty, '.' and '..' path segments are not allowed");
  const own = `projects/${scope.projectId}/`;
  if (!prefix.startsWith(own) && !scope.shared.some((p) => prefix.startsWith(p))) {
    throw bad(`must lie under this project's ${own} or a shared import prefix (${scope.shared.join(', ') || 'none configured'})`);
  }
  return prefix;
}
