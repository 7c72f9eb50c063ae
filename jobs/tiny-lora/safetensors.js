'use strict';
/**
 * A minimal safetensors writer and reader for F32 and F64 tensors (the format PEFT, vLLM and the `safetensors` library use):
 *
 *   [8 bytes: N, unsigned little-endian]  [N bytes: JSON header]  [raw tensor bytes]
 *
 * The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the start of
 * the byte buffer after the header) and may hold "__metadata__" (string -> string). The header is padded with spaces
 * so the data starts 8-byte aligned. The reader enforces the rules of the reference implementation: the header starts
 * with '{', tensors are contiguous and cover the buffer with no gap or overlap, and each byte range matches
 * dtype x shape.
 */

const DTYPE_BYTES = { F32: 4, F64: 8 };
const MAX_HEADER_BYTES = 100 * 1024 * 1024; // the reference reader's limit

/**
 * Tensors are F32 unless they say `dtype: 'F64'` (the trainer's resumable state keeps float64 so a resumed run is
 * bit-identical to an uninterrupted one).
 * @param {Record<string, {shape: number[], data: Float32Array | Float64Array | number[], dtype?: 'F32' | 'F64'}>} tensors
 * @param {Record<string, string>} [metadata]
 * @returns {Buffer}
 */
function serialize(tensors, metadata) {
  // Sorted names make the output depend only on the content, so the same adapter gives the same bytes.
  const names = Object.keys(tensors).sort();
  const header = {};
  if (metadata) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const name of names) {
    const { shape, data, dtype = 'F32' } = tensors[name];
    if (!DTYPE_BYTES[dtype]) throw new Error(`tensor ${name}: unsupported dtype ${dtype}`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (data.length !== count) throw new Error(`tensor ${name}: shape [${shape}] needs ${count} values, got ${data.length}`);
    const bytes = count * DTYPE_BYTES[dtype];
    header[name] = { dtype, shape: [...shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);

  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  let pos = 8 + json.length;
  for (const name of names) {
    // Explicit little-endian writes: correct whatever the host's byte order.
    const f64 = header[name].dtype === 'F64';
    for (const v of tensors[name].data) {
      if (f64) out.writeDoubleLE(v, pos);
      else out.writeFloatLE(v, pos);
      pos += f64 ? 8 : 4;
    }
  }
  return out;
}

/**
 * @param {Buffer} buf
 * @returns {{ tensors: Record<string, {dtype: string, shape: number[], data: Float32Array | Float64Array}>, metadata: Record<string, string> | null }}
 */
function deserialize(buf) {
  if (buf.length < 8) throw new Error('safetensors: file shorter than the 8-byte header length');
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new Error(`safetensors: header of ${n} bytes is too large`);
  const headerLen = Number(n);
  if (8 + headerLen > buf.length) throw new Error('safetensors: header runs past the end of the file');
  const text = buf.subarray(8, 8 + headerLen).toString('utf8');
  if (!text.startsWith('{')) throw new Error('safetensors: header is not a JSON object');
  const header = JSON.parse(text);
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;

  const metadata = header.__metadata__ ?? null;
  if (metadata !== null) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors: __metadata__.${k} is not a string`);
    }
  }
  const entries = Object.entries(header).filter(([name]) => name !== '__metadata__');
  // Contiguity check: sorted by begin offset, each tensor must start where the previous ended.
  entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const tensors = {};
  let expected = 0;
  for (const [name, info] of entries) {
    const bytesPer = DTYPE_BYTES[info.dtype];
    if (!bytesPer) throw new Error(`safetensors: tensor ${name} has unsupported dtype ${info.dtype}`);
    const [begin, end] = info.data_offsets;
    if (begin !== expected) throw new Error(`safetensors: tensor ${name} starts at ${begin}, expected ${expected}`);
    const count = info.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * bytesPer) throw new Error(`safetensors: tensor ${name} byte range does not match its shape`);
    if (end > dataLen) throw new Error(`safetensors: tensor ${name} runs past the end of the file`);
    const data = info.dtype === 'F64' ? new Float64Array(count) : new Float32Array(count);
    for (let i = 0; i < count; i++) {
      data[i] = info.dtype === 'F64' ? buf.readDoubleLE(dataStart + begin + i * 8) : buf.readFloatLE(dataStart + begin + i * 4);
    }
    tensors[name] = { dtype: info.dtype, shape: info.shape, data };
    expected = end;
  }
  if (expected !== dataLen) throw new Error(`safetensors: ${dataLen - expected} trailing bytes not covered by any tensor`);
  return { tensors, metadata };
}

module.exports = { serialize, deserialize };
