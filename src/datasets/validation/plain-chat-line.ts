import { findSpecialToken } from './harmony-tokenizer';

/**
 * The ingest's fast path for the commonest line of a large file: a chat example in its plainest form,
 *
 *     {"messages": [{"role": "...", "content": "..."}, ...]}
 *
 * read straight from the bytes (already checked to be UTF-8 by LineSplitter) without building a string or an object.
 * JSON.parse and the objects it builds were half the ingest thread's time. The reader checks the full JSON grammar of
 * the shape it accepts and gives up (`read` returns false) on anything else: another key or value type, a repeated
 * key, an escape in a key or a role, an unknown role, an empty list, invalid JSON. DatasetValidator then takes the line
 * the ordinary way, so every error and every unusual example is still judged (and worded) by one code path.
 *
 * Contents are kept as byte ranges. `textBytes` gives what the validator needs of one: its UTF-8 length after
 * String.prototype.trim, or -1 where the ordinary path would report it (empty, or a harmony special token). It works
 * on the bytes when that is exact and decodes the one string with JSON.parse when it is not (a \u escape, a '<', an
 * escape or a non-ASCII character at either end, where trim's Unicode whitespace could be).
 */
export class PlainChatLine {
  /** Messages of the last line read: roles (one of ROLE_NAMES) and content ranges, reused from line to line. */
  count = 0;
  private readonly roles: string[] = [];
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  /** Per content: escapes (two bytes that decode to one), any \u escape, any '<' (a special token starts with one). */
  private readonly escapes: number[] = [];
  private readonly decodeOnly: boolean[] = [];
  private buf: Buffer = EMPTY;
  private words: Int32Array = new Int32Array(0);
  private at = 0;
  private end = 0;
  // Set by `stringRest()` for the string it just read.
  private escapeCount = 0;
  private special = false;

  role(i: number): string {
    return this.roles[i];
  }

  /** Reads buf[start, end) (one line, without its newline); false when the line is not of the plain shape. */
  read(buf: Buffer, start: number, end: number): boolean {
    if (buf.buffer !== this.words.buffer) {
      // The whole (Shared)ArrayBuffer as 32-bit words, for scanning long strings four bytes at a time (see `skipPlain`).
      this.words = new Int32Array(buf.buffer, 0, buf.buffer.byteLength >> 2);
    }
    this.buf = buf;
    this.at = start;
    this.end = end;
    this.count = 0;
    if (!this.byte(LBRACE) || !this.key(MESSAGES_KEY) || !this.byte(LBRACKET)) return false;
    do {
      if (!this.message()) return false;
    } while (this.byte(COMMA));
    return this.byte(RBRACKET) && this.byte(RBRACE) && this.skipSpace() === this.end;
  }

  /** The UTF-8 length of message i's content after trim(), or -1 when it is empty or carries a special token. */
  textBytes(i: number): number {
    const buf = this.buf;
    let a = this.starts[i];
    let b = this.ends[i];
    while (a < b && buf[a] === SPACE) a++;
    while (b > a && buf[b - 1] === SPACE) b--;
    if (a === b) return -1;
    const escapes = this.escapes[i];
    // The ends are literal ASCII (not whitespace: raw control bytes are not JSON) and every escape decodes to one byte.
    const exact = !this.decodeOnly[i] && buf[a] < 0x80 && buf[a] !== BACKSLASH && buf[b - 1] < 0x80 && (escapes === 0 || literalAt(buf, b - 1));
    if (exact) return b - a - escapes;
    const text = JSON.parse(buf.toString('utf8', this.starts[i] - 1, this.ends[i] + 1)) as string;
    const trimmed = text.trim();
    if (trimmed === '' || findSpecialToken(text) !== null) return -1;
    return Buffer.byteLength(trimmed, 'utf8');
  }

  /** {"role": "...", "content": "..."} in either order, each once. */
  private message(): boolean {
    if (!this.byte(LBRACE)) return false;
    const i = this.count;
    let role: string | null = null;
    let content = false;
    do {
      if (role === null && this.key(ROLE_KEY)) {
        role = this.roleValue();
        if (role === null) return false;
      } else if (!content && this.key(CONTENT_KEY)) {
        if (!this.byte(QUOTE)) return false;
        const start = this.at;
        if (!this.stringRest()) return false;
        this.starts[i] = start;
        this.ends[i] = this.at - 1;
        this.escapes[i] = this.escapeCount;
        this.decodeOnly[i] = this.special;
        content = true;
      } else {
        return false;
      }
    } while (this.byte(COMMA));
    if (role === null || !content || !this.byte(RBRACE)) return false;
    this.roles[i] = role;
    this.count++;
    return true;
  }

  /**
   * Consumes `"name":` when it comes next. Keys are matched on their raw bytes, so a key spelled with an escape
   * matches nothing and the line goes the ordinary way.
   */
  private key(quoted: Uint8Array): boolean {
    const at = this.skipSpace();
    if (at + quoted.length > this.end || !same(this.buf, at, quoted)) return false;
    this.at = at + quoted.length;
    return this.byte(COLON);
  }

  /** A role value, matched on its raw bytes like a key; null for anything else (an escape, an unknown role). */
  private roleValue(): string | null {
    const at = this.skipSpace();
    for (let r = 0; r < ROLE_VALUES.length; r++) {
      const quoted = ROLE_VALUES[r];
      if (at + quoted.length <= this.end && same(this.buf, at, quoted)) {
        this.at = at + quoted.length;
        return ROLE_NAMES[r];
      }
    }
    return null;
  }

  /** Skips whitespace, then consumes `b` if it comes next. */
  private byte(b: number): boolean {
    if (this.skipSpace() < this.end && this.buf[this.at] === b) {
      this.at++;
      return true;
    }
    return false;
  }

  private skipSpace(): number {
    const buf = this.buf;
    let at = this.at;
    while (at < this.end) {
      const c = buf[at];
      if (c !== SPACE && c !== TAB && c !== CR && c !== LF) break;
      at++;
    }
    return (this.at = at);
  }

  /**
   * The rest of a JSON string whose opening quote was just read; afterwards `at` is past its closing quote. Counts its
   * escapes, notes a \u escape or a '<' in `special`, and fails on a raw control character, a bad escape or no end.
   */
  private stringRest(): boolean {
    const buf = this.buf;
    this.escapeCount = 0;
    this.special = false;
    for (;;) {
      const at = this.skipPlain(this.at);
      if (at >= this.end) return false;
      const c = buf[at];
      if (c === QUOTE) {
        this.at = at + 1;
        return true;
      }
      if (c === LT) {
        this.special = true;
        this.at = at + 1;
      } else if (c === BACKSLASH) {
        const e = buf[at + 1];
        if (e === U) {
          if (at + 5 >= this.end || !isHex(buf[at + 2]) || !isHex(buf[at + 3]) || !isHex(buf[at + 4]) || !isHex(buf[at + 5])) return false;
          this.special = true;
          this.at = at + 6;
        } else if (at + 1 < this.end && SIMPLE_ESCAPES[e] === 1) {
          this.escapeCount++;
          this.at = at + 2;
        } else {
          return false;
        }
      } else {
        return false; // a control character
      }
    }
  }

  /**
   * The first index from `at` whose byte ends a plain run of string bytes: a quote, a backslash, '<' or a control
   * character (or `end`). Aligned stretches are tested four bytes at a time with the usual SWAR tests ("has a byte
   * below 0x20", "has a zero byte" after XOR), which are exact as yes/no answers; the byte is then found one by one.
   */
  private skipPlain(at: number): number {
    const buf = this.buf;
    const end = this.end;
    const base = buf.byteOffset;
    while (at < end && ((base + at) & 3) !== 0) {
      if (stops(buf[at])) return at;
      at++;
    }
    const words = this.words;
    let k = (base + at) >> 2;
    const lastWord = (base + end) >> 2;
    for (; k < lastWord; k++) {
      const x = words[k];
      const q = x ^ 0x22222222;
      const s = x ^ 0x5c5c5c5c;
      const l = x ^ 0x3c3c3c3c;
      if ((((x - 0x20202020) & ~x) | ((q - 0x01010101) & ~q) | ((s - 0x01010101) & ~s) | ((l - 0x01010101) & ~l)) & 0x80808080) break;
    }
    at = Math.max(at, (k << 2) - base);
    while (at < end && !stops(buf[at])) at++;
    return at;
  }
}

const EMPTY = Buffer.alloc(0);
const [SPACE, TAB, CR, LF, QUOTE, BACKSLASH, LT, U] = [0x20, 0x09, 0x0d, 0x0a, 0x22, 0x5c, 0x3c, 0x75];
const [LBRACE, RBRACE, LBRACKET, RBRACKET, COMMA, COLON] = [0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a];
const MESSAGES_KEY = Buffer.from('"messages"');
const ROLE_KEY = Buffer.from('"role"');
const CONTENT_KEY = Buffer.from('"content"');
/** The roles DatasetValidator accepts; any other role (or spelling) goes the ordinary way and gets its error there. */
const ROLE_NAMES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'];
const ROLE_VALUES = ROLE_NAMES.map((r) => Buffer.from(`"${r}"`));
/** The escapes besides \u: \" \\ \/ \b \f \n \r \t, each two bytes that decode to one. */
const SIMPLE_ESCAPES = new Uint8Array(256);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPES[c.charCodeAt(0)] = 1;

function stops(c: number): boolean {
  return c < 0x20 || c === QUOTE || c === BACKSLASH || c === LT;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
}

/** Whether buf holds `name` from `start` (a loop: Buffer.compare's call costs more than these few bytes). */
function same(buf: Buffer, start: number, name: Uint8Array): boolean {
  for (let i = 0; i < name.length; i++) if (buf[start + i] !== name[i]) return false;
  return true;
}

/** Whether buf[at] is a character of its own, not the second byte of an escape: an even run of backslashes before it. */
function literalAt(buf: Buffer, at: number): boolean {
  let run = 0;
  while (buf[at - 1 - run] === BACKSLASH) run++;
  return run % 2 === 0;
}
