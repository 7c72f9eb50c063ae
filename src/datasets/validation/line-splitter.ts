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

  constructor(private readonly maxLineBytes: number, private readonly onLine: (e: LineEvent) => void) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) {
        this.append(chunk.subarray(start));
        return;
      }
      if (this.partBytes === 0 && this.overflowBytes === 0) {
        // The whole line lies in this chunk (the common case): decode it in place, no copy.
        const number = ++this.lineNumber;
        if (nl - start > this.maxLineBytes) this.onLine({ kind: 'too_long', number, bytes: nl - start });
        else this.decodeLine(number, chunk.subarray(start, nl));
      } else {
        this.append(chunk.subarray(start, nl));
        this.emitLine();
      }
      start = nl + 1;
    }
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
}
