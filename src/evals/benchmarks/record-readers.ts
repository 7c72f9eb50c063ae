/**
 * The records of a benchmark file, read as it streams in: one JSON value per line (JSONL), or RFC 4180 CSV records
 * (quoted fields may hold commas, doubled quotes and newlines, so one record can span lines). Each record carries the
 * line it starts on, so an error names it. Only one record is held at a time, capped at `maxRecordBytes`.
 */
import { Readable } from 'node:stream';
import { DomainError } from '../../common/domain-error';

export interface JsonRecord {
  line: number;
  value: unknown;
}

export interface CsvRecord {
  line: number;
  fields: string[];
}

const refuse = (line: number, message: string) => new DomainError('invalid_request', `line ${line}: ${message}`, 'file');

/** Text chunks of a byte stream; a file that is not UTF-8 is refused (the decoder is fatal). */
async function* textChunks(body: Readable): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    for await (const chunk of body) yield decoder.decode(chunk as Buffer, { stream: true });
    yield decoder.decode();
  } catch (err) {
    if (err instanceof TypeError) throw new DomainError('invalid_request', 'the file is not valid UTF-8', 'file', { cause: err });
    throw err;
  }
}

/** JSONL: blank lines are skipped (as the dataset validator skips them); a line that is not JSON is refused. */
export async function* jsonlRecords(body: Readable, maxRecordBytes: number): AsyncGenerator<JsonRecord> {
  let line = 0;
  let rest = '';
  const emit = (text: string): JsonRecord | null => {
    line++;
    const t = text.replace(/\r$/, '').replace(/^\uFEFF/, '');
    if (t.trim() === '') return null;
    try {
      return { line, value: JSON.parse(t) as unknown };
    } catch (err) {
      throw refuse(line, `not valid JSON (${(err as Error).message})`);
    }
  };
  for await (const chunk of textChunks(body)) {
    rest += chunk;
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const r = emit(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
      if (r) yield r;
    }
    if (rest.length > maxRecordBytes) throw refuse(line + 1, `the line is longer than ${maxRecordBytes} characters`);
  }
  if (rest !== '') {
    const r = emit(rest);
    if (r) yield r;
  }
}

/**
 * CSV as the MMLU release writes it (pandas' to_csv, no header): fields separated by commas, a field quoted when it
 * holds a comma, a quote or a newline, a quote inside doubled. CRLF and LF both end a record; blank lines are skipped.
 */
export async function* csvRecords(body: Readable, maxRecordBytes: number): AsyncGenerator<CsvRecord> {
  let fields: string[] = [];
  let field = '';
  let size = 0;
  let quoted = false; // inside a quoted field
  let afterQuote = false; // a quote inside a quoted field was seen: it closes the field or doubles itself
  let line = 1;
  let start = 1;
  let fresh = true; // nothing of the current record read yet
  const endRecord = (): CsvRecord | null => {
    fields.push(field);
    const record = fresh ? null : { line: start, fields };
    fields = [];
    field = '';
    size = 0;
    fresh = true;
    return record;
  };
  for await (const chunk of textChunks(body)) {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (fresh) {
        if (c === '\uFEFF' && line === 1) continue;
        start = line;
      }
      if (quoted) {
        if (afterQuote) {
          afterQuote = false;
          if (c === '"') {
            field += '"';
            continue;
          }
          quoted = false; // the quote closed the field; c is read below as outside quotes
        } else if (c === '"') {
          afterQuote = true;
          continue;
        } else {
          if (c === '\n') line++;
          field += c;
          if (++size > maxRecordBytes) throw refuse(start, `the record is longer than ${maxRecordBytes} characters`);
          continue;
        }
      }
      if (c === '\r') continue;
      if (c === '\n') {
        line++;
        const r = endRecord();
        if (r) yield r;
        continue;
      }
      fresh = false;
      if (c === ',') {
        fields.push(field);
        field = '';
      } else if (c === '"') {
        if (field !== '') throw refuse(line, 'a quote inside an unquoted field (quote the whole field and double the quote)');
        quoted = true;
      } else {
        field += c;
        if (++size > maxRecordBytes) throw refuse(start, `the record is longer than ${maxRecordBytes} characters`);
      }
    }
  }
  if (quoted && !afterQuote) throw refuse(start, 'a quoted field is not closed before the end of the file');
  const r = endRecord();
  if (r) yield r;
}
