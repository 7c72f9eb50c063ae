/**
 * Answer normalization shared by the exact_match and contains scorers, after SQuAD's `normalize_answer` but kept
 * closer to the text: SQuAD drops every punctuation mark, which makes "3.14" equal "314"; here only the marks that
 * wrap or end an answer go.
 */

const QUOTES = new Set(['"', "'", '`', '\u201c', '\u201d', '\u2018', '\u2019', '\u00ab', '\u00bb', '\u201e']);
/** NFKC has already turned full-width marks (！？) into ASCII and the ellipsis into "...". */
const TRAILING_PUNCTUATION = /[.,;:!?\u3002\u3001]+$/u;
const ARTICLES = /(?<![\p{L}\p{N}])(?:a|an|the)(?![\p{L}\p{N}])/gu;

/**
 * NFKC, case-folded, trimmed; surrounding quotes and trailing punctuation stripped (repeatedly, so `"Paris."` and
 * `"Paris".` both give `paris`); the articles a/an/the removed as words; whitespace collapsed. An answer that is only
 * articles ("The") keeps them rather than becoming empty.
 */
export function normalizeAnswer(text: string): string {
  let s = caseFold(text.normalize('NFKC')).trim();
  for (;;) {
    const before = s;
    s = s.replace(TRAILING_PUNCTUATION, '').trim();
    if (s.length >= 2 && QUOTES.has(s[0]) && QUOTES.has(s[s.length - 1])) s = s.slice(1, -1).trim();
    if (s === before) break;
  }
  const withoutArticles = collapse(s.replace(ARTICLES, ' '));
  return withoutArticles === '' ? collapse(s) : withoutArticles;
}

/**
 * normalizeAnswer, then every punctuation mark made a space: for containment at word boundaries, where "Paris," in a
 * sentence must still contain "paris" and "14" must not contain "4".
 */
export function normalizeWords(text: string): string {
  return collapse(normalizeAnswer(text).replace(/\p{P}/gu, ' '));
}

/**
 * JavaScript has no case folding; upper- then lower-casing gets the full folds that matter for answers (ß -> ss,
 * final sigma -> σ) that toLowerCase alone misses.
 */
function caseFold(s: string): string {
  return s.toUpperCase().toLowerCase();
}

function collapse(s: string): string {
  return s.replace(/\s+/gu, ' ').trim();
}
