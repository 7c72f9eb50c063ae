/**
 * The GPT-OSS trainer's pure parts (spec validation against jobs/schema, harmony conversion, events, presigned
 * transfers, dry-run, SIGTERM watchdog) are Python; this runs their unittest suite with the machine's python3 so
 * `npm test` covers them. They need only the standard library: torch and transformers are imported lazily.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const PACKAGE = resolve(__dirname, '../../jobs/gpt-oss-lora');

describe('jobs/gpt-oss-lora Python tests', () => {
  it('pass under python3 -m unittest', () => {
    const run = spawnSync('python3', ['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.', '-v'], {
      cwd: PACKAGE,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    if (run.error) throw run.error;
    const report = run.stderr;
    if (run.status !== 0) console.error(report);
    expect(run.status).toBe(0);
    const ran = Number(/^Ran (\d+) tests? in /m.exec(report)?.[1] ?? 0);
    expect(ran).toBeGreaterThanOrEqual(40); // a discovery mistake must not pass as "0 tests, OK"
    expect(report).toMatch(/^OK$/m);
    expect(report).not.toMatch(/skipped|expected failure/);
  }, 130_000);
});
