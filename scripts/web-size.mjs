// `npm run web:size`: the JavaScript the dashboard's first load fetches (the entry script and every module it
// preloads, as index.html lists them), gzipped at level 9, against the 300 KB budget. Run after `npm run build`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIR = path.join(ROOT, 'dist/public');
const BUDGET = 300 * 1024;

export function firstLoadJs(dir = DIR) {
  const html = fs.readFileSync(path.join(dir, 'index.html'), 'utf8');
  const refs = [...html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*rel="modulepreload"[^>]*\shref)="([^"]+\.js)"/g)].map((m) => m[1]);
  if (!refs.length) throw new Error('no script in dist/public/index.html: build first (npm run build)');
  return refs.map((ref) => {
    const bytes = fs.readFileSync(path.join(dir, ref.replace(/^\//, '')));
    return { file: ref, bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = firstLoadJs();
  for (const f of files) console.log(`${f.file}: ${(f.bytes / 1024).toFixed(1)} KB, ${(f.gzip / 1024).toFixed(1)} KB gzipped`);
  const total = files.reduce((s, f) => s + f.gzip, 0);
  console.log(`first load JavaScript: ${(total / 1024).toFixed(1)} KB gzipped (budget ${BUDGET / 1024} KB)`);
  process.exit(total <= BUDGET ? 0 : 1);
}
