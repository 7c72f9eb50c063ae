import fs from 'node:fs';
import path from 'node:path';

/**
 * Every injectable class is provided by exactly one Nest module, which exports it to the others: two `providers`
 * entries make two instances (two caches, two connections) that drift apart. Read from the sources, so the check
 * needs no database.
 */
const SRC = path.join(__dirname, '../../src');

function moduleFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const file = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'generated' ? [] : moduleFiles(file);
    return e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts') ? [file] : [];
  });
}

/** The class names in each `providers: [...]` of a file ({ provide: X, useClass: Y } counts as Y). */
function providedClasses(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(/providers:\s*\[/g)) {
    const start = m.index! + m[0].length;
    let depth = 1;
    let i = start;
    for (; i < text.length && depth > 0; i++) {
      if (text[i] === '[') depth++;
      else if (text[i] === ']') depth--;
    }
    const body = text.slice(start, i - 1).replace(/\{[^{}]*\}/g, (obj) => /useClass:\s*(\w+)/.exec(obj)?.[1] ?? /provide:\s*(\w+)/.exec(obj)?.[1] ?? '');
    names.push(...(body.match(/\b[A-Z]\w+\b/g) ?? []));
  }
  return names;
}

describe('providers', () => {
  it('are each declared by one module', () => {
    const where = new Map<string, string[]>();
    for (const file of moduleFiles(SRC)) {
      for (const name of new Set(providedClasses(fs.readFileSync(file, 'utf8')))) where.set(name, [...(where.get(name) ?? []), path.relative(SRC, file)]);
    }
    const twice = [...where].filter(([, files]) => files.length > 1).map(([name, files]) => `${name}: ${files.join(', ')}`);
    expect(twice).toEqual([]);
    expect(where.size).toBeGreaterThan(20); // the scan found the modules
  });
});
