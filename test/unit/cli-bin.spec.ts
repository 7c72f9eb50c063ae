import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.join(__dirname, '../..');

/** `npx loraplane --help` in a fresh clone right after `npm ci`: no dist/ yet, only the sources and node_modules. */
describe('the loraplane bin in an unbuilt clone', () => {
  it('runs the CLI from its TypeScript sources when dist/ is missing', () => {
    const clone = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-clone-'));
    fs.cpSync(path.join(ROOT, 'bin'), path.join(clone, 'bin'), { recursive: true });
    // The clone's sources as git has them (src/generated is built, not committed; the CLI needs none of it).
    fs.cpSync(path.join(ROOT, 'src'), path.join(clone, 'src'), { recursive: true, filter: (p) => !p.includes(`${path.sep}generated`) });
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(clone, 'node_modules'));
    expect(fs.existsSync(path.join(clone, 'dist'))).toBe(false);
    const out = execFileSync(process.execPath, [path.join(clone, 'bin/loraplane.js'), '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(out).toMatch(/^usage: loraplane /);
    expect(out).toMatch(/jobs create/);
  });
});
