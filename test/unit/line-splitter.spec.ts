import { isUtf8 } from 'node:buffer';
import { LineEvent, LineSplitter } from '../../src/datasets/validation/line-splitter';

/** Small seeded PRNG (mulberry32) so a failing chunking can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Feeds `bytes` in chunks whose sizes `nextSize` picks, then ends; returns every event and the line count. */
function split(bytes: Buffer, maxLineBytes: number, nextSize: (left: number) => number = (left) => left) {
  const events: LineEvent[] = [];
  const splitter = new LineSplitter(maxLineBytes, (e) => events.push(e));
  for (let at = 0; at < bytes.length; ) {
    const size = Math.max(1, Math.min(nextSize(bytes.length - at), bytes.length - at));
    splitter.push(bytes.subarray(at, at + size));
    at += size;
  }
  splitter.end();
  return { events, lines: splitter.lines };
}

const oneByte = () => 1;
const randomSizes = (seed: number, max: number) => {
  const rnd = prng(seed);
  return () => 1 + Math.floor(rnd() * max);
};

/**
 * An independent statement of what the splitter must produce: split the whole input on LF, drop the empty piece
 * after a final LF, then judge each line on its own.
 */
function reference(bytes: Buffer, maxLineBytes: number): LineEvent[] {
  const pieces: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0a) {
      pieces.push(bytes.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < bytes.length) pieces.push(bytes.subarray(start));
  return pieces.map((raw, i): LineEvent => {
    const number = i + 1;
    if (raw.length > maxLineBytes) return { kind: 'too_long', number, bytes: raw.length };
    let b = raw.at(-1) === 0x0d ? raw.subarray(0, -1) : raw;
    if (number === 1 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) b = b.subarray(3);
    try {
      return { kind: 'line', number, text: new TextDecoder('utf-8', { fatal: true }).decode(b) };
    } catch {
      return { kind: 'bad_utf8', number };
    }
  });
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

describe('LineSplitter', () => {
  describe('chunk boundaries do not matter', () => {
    // BOM, CRLF, blank lines, 2-, 3- and 4-byte characters, a bad byte, an over-long line, no final newline.
    const corpus = Buffer.concat([
      BOM,
      Buffer.from('{"a":"café"}\r\n\n中文行\n'),
      Buffer.from([0x7b, 0xff, 0x7d, 0x0a]),
      Buffer.from(`${'x'.repeat(40)}\n🙂 emoji ok\r\n\r\nlast line, no newline ✓`),
    ]);
    const expected: LineEvent[] = [
      { kind: 'line', number: 1, text: '{"a":"café"}' },
      { kind: 'line', number: 2, text: '' },
      { kind: 'line', number: 3, text: '中文行' },
      { kind: 'bad_utf8', number: 4 },
      { kind: 'too_long', number: 5, bytes: 40 },
      { kind: 'line', number: 6, text: '🙂 emoji ok' },
      { kind: 'line', number: 7, text: '' },
      { kind: 'line', number: 8, text: 'last line, no newline ✓' },
    ];

    it('splits the whole buffer as expected', () => {
      expect(split(corpus, 32)).toEqual({ events: expected, lines: 8 });
    });

    it('gives the same events fed one byte at a time', () => {
      expect(split(corpus, 32, oneByte)).toEqual({ events: expected, lines: 8 });
    });

    it('gives the same events for 200 random chunkings', () => {
      for (let seed = 1; seed <= 200; seed++) {
        const result = split(corpus, 32, randomSizes(seed, seed % 2 ? 7 : 64));
        if (JSON.stringify(result.events) !== JSON.stringify(expected)) {
          throw new Error(`chunking with seed ${seed} differs: ${JSON.stringify(result.events)}`);
        }
      }
    });

    it('matches the reference on random files, whatever the chunking', () => {
      const alphabet = ['a', 'b', ' ', '{', '"', 'é', '€', '𝄞', '\r', '\n', '\n', '\n'];
      for (let seed = 1; seed <= 150; seed++) {
        const rnd = prng(seed);
        const parts: Buffer[] = [];
        if (rnd() < 0.2) parts.push(BOM);
        const n = Math.floor(rnd() * 200);
        for (let i = 0; i < n; i++) {
          // Now and then a byte that is never valid UTF-8, or a lone continuation byte.
          const r = rnd();
          parts.push(r < 0.02 ? Buffer.from([0xfe]) : r < 0.04 ? Buffer.from([0x80]) : Buffer.from(alphabet[Math.floor(rnd() * alphabet.length)]));
        }
        const file = Buffer.concat(parts);
        const cap = 4 + Math.floor(rnd() * 12);
        const want = reference(file, cap);
        for (const sizes of [undefined, oneByte, randomSizes(seed * 7919, 9)]) {
          const got = split(file, cap, sizes);
          if (JSON.stringify(got.events) !== JSON.stringify(want)) {
            throw new Error(`seed ${seed}: ${file.toString('hex')} (cap ${cap})\n got ${JSON.stringify(got.events)}\nwant ${JSON.stringify(want)}`);
          }
          expect(got.lines).toBe(want.length);
        }
      }
    });
  });

  describe('line endings and the BOM', () => {
    it('strips CR only when it ends the line, also when CR and LF arrive in different chunks', () => {
      const { events } = split(Buffer.from('a\r\nb\rc\n\r\n'), 100, oneByte);
      expect(events).toEqual([
        { kind: 'line', number: 1, text: 'a' },
        { kind: 'line', number: 2, text: 'b\rc' },
        { kind: 'line', number: 3, text: '' },
      ]);
    });

    it('removes a BOM from line 1 even when its three bytes arrive one by one', () => {
      const file = Buffer.concat([BOM, Buffer.from('{"x":1}\n{"y":2}\n')]);
      const { events } = split(file, 100, oneByte);
      expect(events).toEqual([
        { kind: 'line', number: 1, text: '{"x":1}' },
        { kind: 'line', number: 2, text: '{"y":2}' },
      ]);
      expect(JSON.parse((events[0] as { text: string }).text)).toEqual({ x: 1 });
    });

    it('handles a file that is only a BOM', () => {
      expect(split(BOM, 100).events).toEqual([{ kind: 'line', number: 1, text: '' }]);
    });
  });

  describe('end of input', () => {
    it('emits a last line without newline only at end()', () => {
      const events: LineEvent[] = [];
      const splitter = new LineSplitter(100, (e) => events.push(e));
      splitter.push(Buffer.from('one\ntwo'));
      expect(events).toEqual([{ kind: 'line', number: 1, text: 'one' }]);
      expect(splitter.lines).toBe(1);
      splitter.end();
      expect(events).toEqual([
        { kind: 'line', number: 1, text: 'one' },
        { kind: 'line', number: 2, text: 'two' },
      ]);
      expect(splitter.lines).toBe(2);
    });

    it('does not invent an empty line after a final newline, nor for empty input', () => {
      expect(split(Buffer.from('one\n'), 100)).toEqual({ events: [{ kind: 'line', number: 1, text: 'one' }], lines: 1 });
      expect(split(Buffer.alloc(0), 100)).toEqual({ events: [], lines: 0 });
    });

    it('counts blank lines as lines (the validator skips them, but line numbers must stay true)', () => {
      expect(split(Buffer.from('\n\nx\n'), 100).events).toEqual([
        { kind: 'line', number: 1, text: '' },
        { kind: 'line', number: 2, text: '' },
        { kind: 'line', number: 3, text: 'x' },
      ]);
    });
  });

  describe('UTF-8', () => {
    it('decodes a multi-byte character cut at every possible chunk boundary', () => {
      const text = 'aé中🙂z';
      const bytes = Buffer.from(`${text}\n`);
      for (let cut = 1; cut < bytes.length; cut++) {
        const events: LineEvent[] = [];
        const splitter = new LineSplitter(100, (e) => events.push(e));
        splitter.push(bytes.subarray(0, cut));
        splitter.push(bytes.subarray(cut));
        splitter.end();
        expect(events).toEqual([{ kind: 'line', number: 1, text }]);
      }
    });

    it.each([
      ['a byte never valid in UTF-8', [0x7b, 0xff, 0x7d]],
      ['a lone continuation byte', [0x61, 0x80]],
      ['a character cut short by the newline', [0xe4, 0xb8]],
      ['an overlong encoding of "/"', [0xc0, 0xaf]],
      ['an encoded UTF-16 surrogate', [0xed, 0xa0, 0x80]],
    ])('reports %s as bad_utf8 with its line number and carries on', (_name, bad) => {
      const file = Buffer.concat([Buffer.from('ok\n'), Buffer.from(bad), Buffer.from('\nstill ok\n')]);
      expect(split(file, 100, oneByte).events).toEqual([
        { kind: 'line', number: 1, text: 'ok' },
        { kind: 'bad_utf8', number: 2 },
        { kind: 'line', number: 3, text: 'still ok' },
      ]);
    });

    it('copies what it keeps: a caller reusing its chunk buffer does not corrupt a pending line', () => {
      const events: LineEvent[] = [];
      const splitter = new LineSplitter(100, (e) => events.push(e));
      const chunk = Buffer.from('abc');
      splitter.push(chunk);
      chunk.write('xyz'); // a stream may hand out the same memory again
      splitter.push(Buffer.from('\n'));
      expect(events).toEqual([{ kind: 'line', number: 1, text: 'abc' }]);
    });
  });

  // Lines wholly inside a chunk are sliced without a per-line check once the chunk's whole-line region passed
  // isUtf8; these cases would catch a fast path that judged the wrong region or sliced where it should not.
  describe('the validated fast path', () => {
    const bytes = (...parts: (string | number[] | Uint8Array)[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

    it('reports the one invalid line of a chunk with its number and keeps its neighbours, in one chunk', () => {
      const file = bytes('{"a":"café"}\n中文\n', [0x7b, 0xff, 0x7d], '\n🙂 ok\r\n€\n');
      expect(split(file, 100)).toEqual({
        events: [
          { kind: 'line', number: 1, text: '{"a":"café"}' },
          { kind: 'line', number: 2, text: '中文' },
          { kind: 'bad_utf8', number: 3 },
          { kind: 'line', number: 4, text: '🙂 ok' },
          { kind: 'line', number: 5, text: '€' },
        ],
        lines: 5,
      });
    });

    it('judges lines after an invalid one in a later chunk on their own', () => {
      const events: LineEvent[] = [];
      const splitter = new LineSplitter(100, (e) => events.push(e));
      splitter.push(bytes('a\n', [0xc3], '\nb'));
      splitter.push(bytes('c\né\n'));
      splitter.end();
      expect(events).toEqual([
        { kind: 'line', number: 1, text: 'a' },
        { kind: 'bad_utf8', number: 2 },
        { kind: 'line', number: 3, text: 'bc' },
        { kind: 'line', number: 4, text: 'é' },
      ]);
    });

    it('decodes a line spanning chunks whose multi-byte character is cut, with whole lines on both sides', () => {
      const file = Buffer.from('first ✓\nprice 5 € and 🙂 done\nlast 中\n');
      const from = file.indexOf('€');
      for (let cut = from; cut <= file.indexOf('done'); cut++) {
        const events: LineEvent[] = [];
        const splitter = new LineSplitter(100, (e) => events.push(e));
        splitter.push(file.subarray(0, cut));
        splitter.push(file.subarray(cut));
        splitter.end();
        expect(events).toEqual([
          { kind: 'line', number: 1, text: 'first ✓' },
          { kind: 'line', number: 2, text: 'price 5 € and 🙂 done' },
          { kind: 'line', number: 3, text: 'last 中' },
        ]);
      }
    });

    it.each([
      [1, '€'],
      [2, '€'],
      [1, '🙂'],
      [3, '🙂'],
    ])('handles a chunk that ends %i byte(s) into %s right after a newline', (keep, ch) => {
      const c = Buffer.from(ch);
      const events: LineEvent[] = [];
      const splitter = new LineSplitter(100, (e) => events.push(e));
      splitter.push(bytes('ok\n', [...c.subarray(0, keep)]));
      expect(events).toEqual([{ kind: 'line', number: 1, text: 'ok' }]);
      splitter.push(bytes([...c.subarray(keep)], ' x\nnext\n'));
      splitter.end();
      expect(events).toEqual([
        { kind: 'line', number: 1, text: 'ok' },
        { kind: 'line', number: 2, text: `${ch} x` },
        { kind: 'line', number: 3, text: 'next' },
      ]);
    });

    it.each([
      ['an encoded UTF-16 surrogate', [0xed, 0xa0, 0x80]],
      ['an encoded low surrogate', [0xed, 0xbf, 0xbf]],
      ['an overlong "/"', [0xc0, 0xaf]],
      ['an overlong 3-byte NUL', [0xe0, 0x80, 0x80]],
      ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
      ['a character cut short by the newline', [0xe2, 0x82]],
    ])('reports %s as bad_utf8 when the whole file is one chunk', (_name, bad) => {
      // The fast path relies on isUtf8 rejecting what the fatal decoder rejects.
      expect(isUtf8(Buffer.from(bad))).toBe(false);
      expect(() => new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(bad))).toThrow();
      const file = bytes('ok €\n', bad, '\nstill ok 🙂\n');
      expect(split(file, 100).events).toEqual([
        { kind: 'line', number: 1, text: 'ok €' },
        { kind: 'bad_utf8', number: 2 },
        { kind: 'line', number: 3, text: 'still ok 🙂' },
      ]);
    });

    it('strips CRLF and the line-1 BOM in a single chunk, and keeps the decoder\'s handling of other BOMs', () => {
      // TextDecoder drops one leading BOM from whatever it decodes, so a line starting with U+FEFF loses it, and a
      // file starting with two loses both; the fast path must agree.
      const file = bytes(BOM, '{"x":"é"}\r\n', BOM, 'two\r\n', BOM, BOM, 'three\r\n\r\nfive\r');
      const want: LineEvent[] = [
        { kind: 'line', number: 1, text: '{"x":"é"}' },
        { kind: 'line', number: 2, text: 'two' },
        { kind: 'line', number: 3, text: '\ufeffthree' },
        { kind: 'line', number: 4, text: '' },
        { kind: 'line', number: 5, text: 'five' },
      ];
      expect(reference(file, 100)).toEqual(want);
      expect(split(file, 100).events).toEqual(want);
      expect(split(file, 100, oneByte).events).toEqual(want);
      expect(split(bytes(BOM, BOM, 'a\r\nb\n'), 100).events).toEqual([
        { kind: 'line', number: 1, text: 'a' },
        { kind: 'line', number: 2, text: 'b' },
      ]);
      expect(split(bytes(BOM, '\r\n', BOM, '\n'), 100).events).toEqual([
        { kind: 'line', number: 1, text: '' },
        { kind: 'line', number: 2, text: '' },
      ]);
    });

    it('does not use the per-line fatal decoder for a valid chunk, and does for an invalid one', () => {
      const splitter = new LineSplitter(100, () => undefined);
      const decode = jest.spyOn((splitter as unknown as { decoder: InstanceType<typeof TextDecoder> }).decoder, 'decode');
      splitter.push(Buffer.from('{"a":1}\n{"b":"€"}\n'));
      expect(decode).not.toHaveBeenCalled();
      // A character cut by the chunk's end lies past the last newline: it must not spoil the region before it.
      const euro = Buffer.from('€');
      splitter.push(bytes('{"c":2}\n', [euro[0]]));
      expect(decode).not.toHaveBeenCalled();
      splitter.push(bytes([euro[1], euro[2]], '\n'));
      expect(decode).toHaveBeenCalledTimes(1); // the line assembled from two chunks
      splitter.push(bytes('x\n', [0xff], '\ny\n'));
      expect(decode).toHaveBeenCalledTimes(4);
    });

    it('accepts a plain Uint8Array chunk', () => {
      const events: LineEvent[] = [];
      const splitter = new LineSplitter(100, (e) => events.push(e));
      const backing = Buffer.from('__a€\nb\n__');
      splitter.push(new Uint8Array(backing.buffer, backing.byteOffset + 2, backing.length - 4));
      expect(events).toEqual([
        { kind: 'line', number: 1, text: 'a€' },
        { kind: 'line', number: 2, text: 'b' },
      ]);
    });

    it('matches a per-line fatal-decoder reference on a mixed file, whatever the chunking', () => {
      // Valid lines (ASCII, JSON, non-ASCII), invalid lines of every kind, CRLF, blank, BOM-led and over-long lines.
      const rnd = prng(20240611);
      const valid = ['{"messages":[{"role":"user","content":"hi"}]}', 'café crème', '€ 12,50', '中文内容', '🙂🙃 𝄞', '', 'plain ascii line'];
      const invalid: number[][] = [[0xff], [0x80], [0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0xf0, 0x9f, 0x99]];
      const parts: Buffer[] = [BOM];
      for (let i = 0; i < 400; i++) {
        const r = rnd();
        const text = valid[Math.floor(rnd() * valid.length)];
        if (r < 0.15) parts.push(bytes(text.slice(0, 3), invalid[Math.floor(rnd() * invalid.length)], text.slice(3)));
        else if (r < 0.2) parts.push(Buffer.from(`${text} ${'z'.repeat(80)}`)); // over the cap
        else if (r < 0.23) parts.push(bytes(BOM, text));
        else parts.push(Buffer.from(text));
        parts.push(Buffer.from(rnd() < 0.2 ? '\r\n' : '\n'));
      }
      parts.push(Buffer.from('no final newline €'));
      const file = Buffer.concat(parts);
      const cap = 64;
      const want = reference(file, cap);
      expect(want.filter((e) => e.kind === 'bad_utf8').length).toBeGreaterThan(30);
      expect(split(file, cap)).toEqual({ events: want, lines: want.length });
      for (let seed = 1; seed <= 120; seed++) {
        const got = split(file, cap, randomSizes(seed, [3, 17, 200, 5000][seed % 4]));
        if (JSON.stringify(got.events) !== JSON.stringify(want) || got.lines !== want.length) {
          const at = got.events.findIndex((e, i) => JSON.stringify(e) !== JSON.stringify(want[i]));
          throw new Error(`seed ${seed}: first difference at event ${at}: got ${JSON.stringify(got.events[at])}, want ${JSON.stringify(want[at])}`);
        }
      }
    });
  });

  describe('the line cap', () => {
    it('accepts a line of exactly the cap and rejects one byte more, then parses the next line', () => {
      const file = Buffer.from(`${'a'.repeat(10)}\n${'b'.repeat(11)}\nnext\n`);
      for (const sizes of [undefined, oneByte, randomSizes(3, 5)]) {
        expect(split(file, 10, sizes).events).toEqual([
          { kind: 'line', number: 1, text: 'a'.repeat(10) },
          { kind: 'too_long', number: 2, bytes: 11 },
          { kind: 'line', number: 3, text: 'next' },
        ]);
      }
    });

    it('reports an over-long last line without newline at end()', () => {
      expect(split(Buffer.from(`ok\n${'z'.repeat(30)}`), 10, oneByte).events).toEqual([
        { kind: 'line', number: 1, text: 'ok' },
        { kind: 'too_long', number: 2, bytes: 30 },
      ]);
    });

    it('reports consecutive over-long lines separately with their own sizes', () => {
      expect(split(Buffer.from(`${'a'.repeat(12)}\n${'b'.repeat(25)}\n`), 10, randomSizes(9, 4)).events).toEqual([
        { kind: 'too_long', number: 1, bytes: 12 },
        { kind: 'too_long', number: 2, bytes: 25 },
      ]);
    });

    it('never buffers more than the cap: a 50 MB line under a 1 MB cap', () => {
      const MB = 1024 * 1024;
      const cap = MB;
      const events: LineEvent[] = [];
      const splitter = new LineSplitter(cap, (e) => events.push(e));
      const internals = splitter as unknown as { parts: Buffer[]; partBytes: number };
      const chunk = Buffer.alloc(64 * 1024, 0x78); // one reused 64 KiB chunk, as a socket read would be
      const before = process.memoryUsage().arrayBuffers;
      let peak = 0;
      splitter.push(Buffer.from('{"first":true}\n'));
      for (let sent = 0; sent < 50 * MB; sent += chunk.length) {
        splitter.push(chunk);
        const held = internals.parts.reduce((n, b) => n + b.length, 0);
        expect(held).toBe(internals.partBytes);
        peak = Math.max(peak, held);
      }
      splitter.push(Buffer.from('\n{"after":true}\n'));
      splitter.end();
      const grown = process.memoryUsage().arrayBuffers - before;

      expect(peak).toBeLessThanOrEqual(cap);
      expect(internals.partBytes).toBe(0);
      expect(internals.parts).toEqual([]);
      expect(grown).toBeLessThan(10 * MB); // nowhere near the 50 MB the line holds
      expect(events).toEqual([
        { kind: 'line', number: 1, text: '{"first":true}' },
        { kind: 'too_long', number: 2, bytes: 50 * MB },
        { kind: 'line', number: 3, text: '{"after":true}' },
      ]);
    });

    it('does not copy a huge chunk it is going to skip anyway', () => {
      const big = Buffer.alloc(8 * 1024 * 1024, 0x61);
      const events: LineEvent[] = [];
      const splitter = new LineSplitter(1024, (e) => events.push(e));
      const internals = splitter as unknown as { partBytes: number };
      splitter.push(big);
      expect(internals.partBytes).toBe(0);
      splitter.end();
      expect(events).toEqual([{ kind: 'too_long', number: 1, bytes: big.length }]);
    });
  });
});
