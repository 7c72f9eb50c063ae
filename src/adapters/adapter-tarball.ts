import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { DomainError } from '../common/domain-error';
import { ADAPTER_FILES, AdapterFileName, AdapterWriter } from './adapter-files';

/**
 * Unpacks a PEFT directory tarball (.tar, or .tar.gz told by gzip's magic bytes, not by the name) straight into an
 * AdapterWriter, entry by entry: nothing is held whole in memory or put on disk. The adapter files may sit at the
 * top or inside one folder; other regular files (README.md, tokenizer files) are read past. Links and names that
 * could leave the directory are refused even when they would be ignored: such a tarball was not made by PEFT.
 */
export async function unpackTarball(upload: Readable, maxBytes: number, writer: AdapterWriter): Promise<void> {
  const { gzip, bytes } = await sniffGzip(upload);
  const extract = tar.extract();
  // Both sizes are limited: a small .tar.gz can unpack to far more than it weighs.
  const feeding = gzip
    ? pipeline(bytes, byteLimit(maxBytes, 'The upload'), createGunzip(), byteLimit(maxBytes, 'The unpacked tarball'), extract)
    : pipeline(bytes, byteLimit(maxBytes, 'The upload'), extract);
  feeding.catch(() => undefined); // awaited below; until then a rejection must not count as unhandled
  const taken = new Map<AdapterFileName, string>();
  try {
    for await (const entry of extract) {
      const target = adapterFileOf(entry.header);
      if (!target || !takes(target, taken, entry.header.name)) {
        for await (const _ of entry); // read past it
        continue;
      }
      taken.set(target.name, target.folder);
      await writer.write(target.name, Readable.from(entry, { objectMode: false }));
    }
    await feeding;
  } catch (err) {
    extract.destroy();
    // A failure while feeding (too large, not gzip, not tar) is the cause and the loop only saw its echo, unless
    // the loop failed first and the feed merely stopped because of it.
    const fed = await feeding.then(() => undefined, (e: unknown) => e);
    const stoppedByUs = fed === undefined || (fed as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE';
    throw explain(fed instanceof DomainError || !(err instanceof DomainError || stoppedByUs) ? fed : err);
  }
  const [config, weights] = ADAPTER_FILES.map((n) => taken.get(n));
  if (config !== undefined && weights !== undefined && config !== weights) {
    throw new DomainError('invalid_adapter', `adapter_config.json is in ${where(config)} but adapter_model.safetensors in ${where(weights)}; both must sit together`, 'file');
  }
}

const where = (folder: string) => (folder === '' ? 'the top level' : `'${folder}/'`);

/**
 * Whether an adapter file found in the tarball is the one to keep. A directory packed from inside (`tar -C out .`)
 * may hold a trainer's checkpoint-N/ folders with their own adapter files: the top level wins over them, even when
 * it comes later (it is then written over the folder's copy). Two folders and no top level is ambiguous.
 */
function takes(found: { name: AdapterFileName; folder: string }, taken: Map<AdapterFileName, string>, entry: string): boolean {
  const before = taken.get(found.name);
  if (before === undefined) return true;
  const refuse = (why: string) => new DomainError('invalid_adapter', `Tarball entry '${entry}' ${why}`, 'file');
  if (before === found.folder) throw refuse(`is a second ${found.name} in ${where(before)}`);
  if (found.folder === '') return true;
  if (before === '') return false;
  throw refuse(`is a second ${found.name}, besides the one in ${where(before)}; put the adapter's files at the top level or in one folder`);
}

/** Which adapter file an entry is (and in which folder), null for one to read past; throws for unsafe entries. */
function adapterFileOf(header: tar.Header): { name: AdapterFileName; folder: string } | null {
  const refuse = (why: string) => new DomainError('invalid_adapter', `Tarball entry '${header.name}' ${why}`, 'file');
  if (header.type === 'symlink' || header.type === 'link') throw refuse('is a link; a PEFT directory holds only regular files');
  if (header.name.startsWith('/') || /^[A-Za-z]:/.test(header.name) || header.name.includes('\\')) {
    throw refuse('has an absolute (or non-portable) name; names must be relative to the directory');
  }
  const parts = header.name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refuse("leaves the directory ('..')");
  if (header.type === 'directory') return null;
  if (header.type !== 'file' && header.type !== 'contiguous-file') throw refuse(`is a ${header.type}, not a regular file`);
  const base = parts[parts.length - 1];
  if (parts.length > 2 || !(ADAPTER_FILES as readonly string[]).includes(base)) return null;
  return { name: base as AdapterFileName, folder: parts.length === 2 ? parts[0] : '' };
}

/** Reads the first bytes to tell gzip (1f 8b) from a plain tar, then hands back the whole stream, those bytes included. */
async function sniffGzip(upload: Readable): Promise<{ gzip: boolean; bytes: Readable }> {
  const it = upload[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  while (head.reduce((n, b) => n + b.length, 0) < 2) {
    const next = await it.next();
    if (next.done) break;
    head.push(next.value);
  }
  const first = Buffer.concat(head);
  if (first.length === 0) throw new DomainError('invalid_adapter', 'The uploaded file is empty; send a .tar or .tar.gz of a PEFT directory', 'file');
  async function* all(): AsyncGenerator<Buffer> {
    try {
      yield first;
      for (let next = await it.next(); !next.done; next = await it.next()) yield next.value;
    } finally {
      await it.return?.();
    }
  }
  return { gzip: first[0] === 0x1f && first[1] === 0x8b, bytes: Readable.from(all(), { objectMode: false }) };
}

function byteLimit(max: number, what: string): Transform {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > max) done(new DomainError('payload_too_large', `${what} is larger than the limit of ${max} bytes (MAX_UPLOAD_BYTES)`, 'file'));
      else done(null, chunk);
    },
  });
}

/** zlib's and tar-stream's errors mean the upload is not what it claims; say so as bad input, not as a 500. */
function explain(err: unknown): unknown {
  if (err instanceof DomainError || !(err instanceof Error)) return err;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code.startsWith('Z_')) return new DomainError('invalid_adapter', `The upload looks like gzip but does not unpack (${err.message})`, 'file', { cause: err });
  if (code.startsWith('ERR_')) return err; // Node's own stream errors are not about the upload's content
  return new DomainError('invalid_adapter', `The upload is not a readable tar archive (${err.message})`, 'file', { cause: err });
}
