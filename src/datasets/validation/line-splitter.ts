import { isUtf8 } from 'node:buffer';

/**
 * Splits a byte stream into lines without ever holding more than one line (capped at `maxLineBytes`) in memory.
 * A line over the cap is reported as too long and skipped to its end, not buffered.
 */
export type LineEvent =
  | { kind: 'line'; number: number; text: string }
  | { kind: 'too_long'; number: number; bytes: number }
  | { kind: 'bad_utf8'; number: number };

export class LineSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;
  private lineNumber = 0;
  private overflowBytes = 0; // > 0 while skipping the rest of a too-long line
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  /**
   * `onBytes`, when given, is offered each line that lies whole in a chunk of valid UTF-8 before it is decoded: it
   * returns true when it has taken the line from the bytes (DatasetValidator's fast path), false to get the line event.
   */
  constructor(
    private readonly maxLineBytes: number,
    private readonly onLine: (e: LineEvent) => void,
    private readonly onBytes?: (number: number, chunk: Buffer, start: number, end: number) => boolean,
  ) {}

  push(bytes: Uint8Array): void {
    // A view, not a copy: toString('utf8', start, end) below needs a Buffer (a Uint8Array's toString takes no range).
    const chunk = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let start = 0;
    if (this.partBytes > 0 || this.overflowBytes > 0) {
      // A line begun in an earlier chunk: finish it (assembled from its parts, decoded by the fatal decoder).
      const nl = chunk.indexOf(0x0a);
      if (nl === -1) {
        this.append(chunk);
        return;
      }
      this.append(chunk.subarray(0, nl));
      this.emitLine();
      start = nl + 1;
    }
    // The lines from `start` up to the last newline lie wholly in this chunk (the common case): decode them in place.
    // A fatal TextDecoder call per line was the cost of ingest, so check the whole region once (simdutf) and, when it
    // is valid UTF-8, slice each line without validating again: every line of a valid region starts and ends on a
    // character boundary, so the slice equals what the fatal decoder would give. An invalid region (rare) takes the
    // per-line decoder, which reports just the bad lines. The region stops at the last newline, so a character cut
    // by the chunk's end is never judged here; it goes to the next chunk with the rest of its line.
    const last = chunk.lastIndexOf(0x0a);
    const valid = last >= start && isUtf8(chunk.subarray(start, last));
    while (start <= last) {
      const nl = chunk.indexOf(0x0a, start);
      const number = ++this.lineNumber;
      if (nl - start > this.maxLineBytes) this.onLine({ kind: 'too_long', number, bytes: nl - start });
      else if (valid) this.sliceLine(number, chunk, start, nl);
      else this.decodeLine(number, chunk.subarray(start, nl));
      start = nl + 1;
    }
    this.append(chunk.subarray(start));
  }

  /** Call once at end of input: a last line without a trailing newline still counts. */
  end(): void {
    if (this.partBytes > 0 || this.overflowBytes > 0) this.emitLine();
  }

  get lines(): number {
    return this.lineNumber;
  }

  private append(bytes: Buffer) {
    if (bytes.length === 0) return;
    if (this.overflowBytes > 0) {
      this.overflowBytes += bytes.length;
      return;
    }
    if (this.partBytes + bytes.length > this.maxLineBytes) {
      this.overflowBytes = this.partBytes + bytes.length;
      this.parts = [];
      this.partBytes = 0;
      return;
    }
    this.parts.push(Buffer.from(bytes)); // copy: the caller may reuse its chunk
    this.partBytes += bytes.length;
  }

  private emitLine() {
    const number = ++this.lineNumber;
    if (this.overflowBytes > 0) {
      this.onLine({ kind: 'too_long', number, bytes: this.overflowBytes });
      this.overflowBytes = 0;
      return;
    }
    const buf = Buffer.concat(this.parts, this.partBytes);
    this.parts = [];
    this.partBytes = 0;
    this.decodeLine(number, buf);
  }

  private decodeLine(number: number, line: Buffer) {
    let buf = line;
    if (buf.length > 0 && buf[buf.length - 1] === 0x0d) buf = buf.subarray(0, buf.length - 1); // CRLF files
    if (number === 1 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3); // BOM
    let text: string;
    try {
      text = this.decoder.decode(buf);
    } catch {
      this.onLine({ kind: 'bad_utf8', number });
      return;
    }
    this.onLine({ kind: 'line', number, text });
  }

  /** decodeLine for the bytes chunk[start, end) already known to be valid UTF-8, giving the same text. */
  private sliceLine(number: number, chunk: Buffer, start: number, end: number) {
    if (end > start && chunk[end - 1] === 0x0d) end--; // CRLF files
    if (number === 1 && bomAt(chunk, start, end)) start += 3; // BOM
    // TextDecoder.decode (ignoreBOM false) also drops one BOM at the start of whatever it decodes: do the same.
    if (bomAt(chunk, start, end)) start += 3;
    if (this.onBytes?.(number, chunk, start, end)) return;
    this.onLine({ kind: 'line', number, text: chunk.toString('utf8', start, end) });
  }
}

function bomAt(buf: Buffer, start: number, end: number): boolean {
  return end - start >= 3 && buf[start] === 0xef && buf[start + 1] === 0xbb && buf[start + 2] === 0xbf;
}
