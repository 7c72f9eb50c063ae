// Summary of a V8 .cpuprofile (node --cpu-prof): the functions with the most self time, and self time per file
// (node_modules packages folded into one line each), so a bench can say where a process spends its CPU.
// Also usable alone: node scripts/lib/cpu-profile.mjs <file.cpuprofile> [top] [skip ms]
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';

const short = (url) => {
  if (!url) return '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `npm:${pkg[1]}`;
  if (url.startsWith('node:')) return url;
  const src = /\/(dist|src|scripts|jobs|adapters)\/(.*)$/.exec(url);
  return src ? `${src[1]}/${src[2]}` : url;
};

/** Self milliseconds per node id, from the samples (those `skipMs` or later after the start) and their deltas. */
function selfTimes(profile, skipMs) {
  const self = new Map();
  const { samples = [], timeDeltas = [] } = profile;
  let at = 0;
  for (let i = 0; i < samples.length; i++) {
    const ms = (timeDeltas[i] ?? 0) / 1000;
    at += ms;
    if (at >= skipMs) self.set(samples[i], (self.get(samples[i]) ?? 0) + ms);
  }
  return self;
}

/** `skipMs`: leave out the first milliseconds (a server's start-up: module loading and compiling). */
export function summarize(profile, { top = 25, skipMs = 0 } = {}) {
  const self = selfTimes(profile, skipMs);
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map();
  const byFile = new Map();
  for (const node of profile.nodes) {
    const ms = self.get(node.id) ?? 0;
    if (ms === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const fn = `${functionName || '(anonymous)'} ${short(url)}${url ? `:${lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
    const file = url ? short(url) : functionName; // (program), (garbage collector), (idle) are their own lines
    byFile.set(file, (byFile.get(file) ?? 0) + ms);
  }
  const busy = total - (byFile.get('(idle)') ?? 0);
  const lines = (m, n) =>
    [...m.entries()]
      .filter(([k]) => k !== '(idle)' && !k.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, ms]) => `  ${ms.toFixed(0).padStart(7)} ms ${((ms / busy) * 100).toFixed(1).padStart(5)} %  ${k}`)
      .join('\n');
  return [`busy ${busy.toFixed(0)} ms of ${total.toFixed(0)} ms sampled`, 'self time by function:', lines(byFunction, top), 'self time by file or package:', lines(byFile, 20)].join('\n');
}

/**
 * What a process spent per request on each part of its work: `parts` maps a label to a test of a call frame
 * ({ functionName, url }), and a part's time is the inclusive time of its outermost matching frames (a frame under
 * an earlier part's match still counts for that part only). Returns microseconds per request for each part, then
 * "garbage collection", "everything else" and "total (busy)".
 */
export function partsPerRequest(profile, parts, requests, { skipMs = 0 } = {}) {
  const self = selfTimes(profile, skipMs);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const labels = Object.keys(parts);
  const ms = Object.fromEntries(labels.map((l) => [l, 0]));
  let busy = 0;
  let gc = 0;
  // Depth-first from the root, carrying the part the nearest matching ancestor belongs to.
  const stack = [[profile.nodes[0].id, null]];
  while (stack.length > 0) {
    const [id, inherited] = stack.pop();
    const node = byId.get(id);
    const name = node.callFrame.functionName;
    const part = inherited ?? labels.find((l) => parts[l](node.callFrame)) ?? null;
    const t = self.get(id) ?? 0;
    if (name !== '(idle)') busy += t;
    if (name === '(garbage collector)') gc += t;
    else if (part) ms[part] += t;
    for (const c of node.children ?? []) stack.push([c, part]);
  }
  const us = (x) => (x / requests) * 1000;
  const out = Object.fromEntries(labels.map((l) => [l, us(ms[l])]));
  out['garbage collection'] = us(gc);
  out['everything else'] = us(busy - gc - labels.reduce((n, l) => n + ms[l], 0));
  out['total (busy)'] = us(busy);
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node scripts/lib/cpu-profile.mjs <file.cpuprofile> [top] [skip ms]');
    process.exit(2);
  }
  console.log(summarize(JSON.parse(fs.readFileSync(file, 'utf8')), { top: Number(process.argv[3] ?? 25), skipMs: Number(process.argv[4] ?? 0) }));
}
