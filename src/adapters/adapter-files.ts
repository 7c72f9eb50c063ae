import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DomainError } from '../common/domain-error';
import { ObjectStore } from '../storage/object-store';
import { checkPeftConfig, PeftSummary } from './peft-config';

export interface FileRecord {
  name: string;
  bytes: number;
  sha256: string;
}

/** The files vLLM needs, in the order a version lists them (so equal bytes give an equal `files` value). */
export const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors'] as const;
export type AdapterFileName = (typeof ADAPTER_FILES)[number];

const MAX_CONFIG_BYTES = 1024 * 1024;
/** The reference safetensors reader refuses larger headers, so vLLM would too. */
const MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024;

/** Streams `source` to `key` while hashing it; `check` sees the bytes first and can fail the write. */
export async function storeHashed(store: ObjectStore, key: string, name: string, source: Readable, check?: Transform): Promise<FileRecord> {
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  // When S3 gives up, the feeding side must stop too, or it would wait forever on a reader that is gone.
  const stored = store.put(key, tap).catch((err: unknown) => {
    tap.destroy(err as Error);
    throw err;
  });
  const fed = check ? pipeline(source, check, tap) : pipeline(source, tap);
  const [feeding, storing] = await Promise.allSettled([fed, stored]);
  // The feeding side's error says why (a bad header); the store's is then only its echo.
  if (feeding.status === 'rejected') throw feeding.reason;
  if (storing.status === 'rejected') throw storing.reason;
  return { name, bytes, sha256: hash.digest('hex') };
}

const invalidFile = (name: string, why: string) => new DomainError('invalid_adapter', `${name}: ${why}`, name);

/**
 * Passes the bytes of a safetensors file through unchanged while checking its layout: an 8-byte little-endian header
 * length, a JSON object header of at most 100 MB, and tensors whose data_offsets end exactly where the file does
 * (a truncated upload fails here instead of in vLLM).
 */
export function safetensorsCheck(name: string): Transform {
  const head: Buffer[] = [];
  let headBytes = 0;
  let headerLength: number | null = null;
  let dataBytes: number | null = null; // what the header says follows it, once parsed
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      total += chunk.length;
      if (dataBytes === null) {
        head.push(chunk);
        headBytes += chunk.length;
        try {
          if (headerLength === null && headBytes >= 8) headerLength = readHeaderLength(name, Buffer.concat(head));
          if (headerLength !== null && headBytes >= 8 + headerLength) {
            dataBytes = parseHeader(name, Buffer.concat(head).subarray(8, 8 + headerLength));
            head.length = 0;
          }
        } catch (err) {
          done(err as Error);
          return;
        }
      }
      done(null, chunk);
    },
    flush(done) {
      if (headerLength === null) return done(invalidFile(name, 'is shorter than the 8-byte header length of a safetensors file'));
      if (dataBytes === null) return done(invalidFile(name, `ends inside its ${headerLength}-byte JSON header`));
      const following = total - 8 - headerLength;
      if (following !== dataBytes) return done(invalidFile(name, `its header describes ${dataBytes} bytes of tensors but ${following} follow it`));
      done();
    },
  });
}

function readHeaderLength(name: string, first: Buffer): number {
  const n = first.readBigUInt64LE(0);
  if (n > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) throw invalidFile(name, `safetensors header of ${n} bytes is larger than the 100 MB limit`);
  return Number(n);
}

/** The header's JSON; returns how many data bytes its tensors cover. */
function parseHeader(name: string, raw: Buffer): number {
  let header: unknown;
  try {
    header = JSON.parse(raw.toString('utf8'));
  } catch {
    header = undefined;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw invalidFile(name, 'the safetensors header is not valid JSON (an object)');
  let end = 0;
  let tensors = 0;
  for (const [tensor, info] of Object.entries(header)) {
    if (tensor === '__metadata__') continue;
    const offsets = (info as { data_offsets?: unknown })?.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      throw invalidFile(name, `tensor '${tensor}' has no valid data_offsets in the safetensors header`);
    }
    end = Math.max(end, offsets[1]);
    tensors++;
  }
  if (tensors === 0) throw invalidFile(name, 'the safetensors header lists no tensors');
  return end;
}

/**
 * Writes one adapter's files under a version's prefix, checking each on the way: adapter_config.json is parsed and
 * checked before it is stored, the weights' safetensors layout while they stream. It remembers every key it touched,
 * so a failed import can take all of them back.
 */
export class AdapterWriter {
  private readonly files = new Map<AdapterFileName, FileRecord>();
  private readonly touched = new Set<string>();
  private config: { raw: Record<string, unknown>; peft: PeftSummary } | null = null;

  constructor(private readonly store: ObjectStore, readonly prefix: string) {}

  /** Writes one file, or writes over the one written before under that name (a tarball's top level wins). */
  async write(name: AdapterFileName, source: Readable): Promise<void> {
    const key = this.prefix + name;
    this.touched.add(key);
    this.files.delete(name);
    if (name === 'adapter_config.json') {
      const text = await readLimited(source, MAX_CONFIG_BYTES, name);
      let raw: unknown;
      try {
        raw = JSON.parse(text.toString('utf8'));
      } catch (err) {
        throw invalidFile(name, `is not valid JSON (${(err as Error).message})`);
      }
      // Checked before anything is stored: a config vLLM cannot serve ends the import here.
      const peft = checkPeftConfig(raw);
      this.config = { raw: raw as Record<string, unknown>, peft };
      await this.store.put(key, text, 'application/json');
      this.files.set(name, { name, bytes: text.length, sha256: createHash('sha256').update(text).digest('hex') });
    } else {
      this.files.set(name, await storeHashed(this.store, key, name, source, safetensorsCheck(name)));
    }
  }

  /** The complete adapter; `param` is the request field blamed for a missing file. */
  result(param: string): { files: FileRecord[]; config: Record<string, unknown>; peft: PeftSummary } {
    const missing = ADAPTER_FILES.filter((n) => !this.files.has(n));
    if (missing.length > 0 || !this.config) {
      throw new DomainError('invalid_adapter', `The PEFT directory lacks ${missing.join(' and ')} (both adapter_config.json and adapter_model.safetensors are required)`, param);
    }
    return { files: ADAPTER_FILES.map((n) => this.files.get(n)!), config: this.config.raw, peft: this.config.peft };
  }

  /** Every key written or attempted (a failed multipart upload may leave nothing, but deleting is harmless). */
  keys(): string[] {
    return [...this.touched];
  }
}

/** Reads a small file whole, refusing it as soon as it passes `max` bytes. */
async function readLimited(source: Readable, max: number, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of source) {
    bytes += (chunk as Buffer).length;
    if (bytes > max) {
      source.destroy();
      throw invalidFile(name, `is larger than ${max / (1024 * 1024)} MB; an adapter config is a few hundred bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
