import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { testEnv, waitFor } from '../support/app';
import { freePort } from '../support/replicas';

const MAIN = path.resolve(__dirname, '../../dist/main.js');

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Runs the production entry point (`npm start`), as an operator would. scripts/test.mjs builds dist/ first. */
function runMain(env: Record<string, string | undefined>, args: string[] = [], nodeArgs: string[] = []): Run {
  let out = '';
  let err = '';
  const child = spawn(process.execPath, [...nodeArgs, MAIN, ...args], { env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/**
 * waitFor while the process runs: if it exits first, fails at once, and either way a failure carries what the process
 * printed (a gateway that could not bind its port, say, instead of 30 s of silence).
 */
function whileRunning<T>(run: Run, what: string, check: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  return waitFor(what, async () => {
    const ended = run.child.exitCode ?? run.child.signalCode;
    if (ended !== null) throw new Error(`the process ended (${ended}) before ${what}`);
    return check();
  }, timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}\n--- stderr\n${run.stderr().slice(-3000)}\n--- stdout\n${run.stdout().slice(-3000)}`);
  });
}

describe('the loraplane process (e2e)', () => {
  it('refuses to start on a bad environment, naming every offending variable', async () => {
    const env = testEnv({ PORT: 'eighty', LORAPLANE_ROLE: 'everything', S3_ACCESS_KEY_ID: 'only-half' });
    delete env.DATABASE_URL;
    delete env.S3_SECRET_ACCESS_KEY;
    const run = runMain(env);
    expect(await run.exited).toBe(78);
    const message = run.stderr();
    for (const name of ['DATABASE_URL: required but not set', 'PORT', 'LORAPLANE_ROLE', 'S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY']) {
      expect(message).toContain(name);
    }
    expect(message).toContain('.env.example');
  });

  it('creates and prints a working key in dev mode, keeps secrets out of its JSON logs, and stops on SIGTERM', async () => {
    const port = String(await freePort());
    const env = testEnv({ PORT: port, LOG_LEVEL: 'info' });
    delete env.LORAPLANE_API_KEY;
    const run = runMain(env);
    try {
      const key = await whileRunning(run, 'the printed API key', async () => /API key:\s+(lp_[A-Za-z0-9]+)/.exec(run.stdout())?.[1]);
      const url = `http://localhost:${port}`;
      expect(run.stdout()).toContain(`loraplane is running: ${url}`);
      const ready = await whileRunning(run, 'readiness', async () => {
        const res = await fetch(`${url}/readyz`).catch(() => null);
        return res?.status === 200 ? res : null;
      });
      expect(ready.status).toBe(200);
      const files = await fetch(`${url}/v1/files`, { headers: { authorization: `Bearer ${key}`, 'x-request-id': 'trace-me-123' } });
      expect(files.status).toBe(200);
      expect(files.headers.get('x-request-id')).toBe('trace-me-123');
      const bad = await fetch(`${url}/v1/files`, { headers: { authorization: `Bearer ${key}x` } });
      expect(bad.status).toBe(401);

      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
      // Every log line is JSON; the request id travels into them; the key appears only in the human banner.
      const logLines = run.stdout().split('\n').filter((l) => l.startsWith('{'));
      expect(logLines.length).toBeGreaterThan(5);
      const parsed = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(parsed.some((l) => l.requestId === 'trace-me-123' && l.status === 200)).toBe(true);
      expect(logLines.join('\n')).not.toContain(key);
      expect(run.stderr()).not.toContain(key);
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  it('runs a gateway without loading the rest of the app (a third of its code: start-up and memory per replica)', async () => {
    const port = String(await freePort());
    const list = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loaded-')), 'modules.txt');
    const preload = path.resolve(__dirname, '../support/loaded-modules.js');
    const run = runMain(testEnv({ PORT: port, LORAPLANE_ROLE: 'gateway', LOADED_MODULES_FILE: list }), [], ['--require', preload]);
    try {
      const health = await whileRunning(run, 'the gateway', async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok);
      expect(health).toBe(true);
      // An inference request goes the whole way in (key, body, routing): nothing on that path loads more.
      const answer = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer lp_nobody', 'content-type': 'application/json' }, body: '{}' });
      expect(answer.status).toBe(401);
      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
      const dist = path.dirname(MAIN) + path.sep;
      const loaded = fs.readFileSync(list, 'utf8').split('\n').filter((f) => f.startsWith(dist)).map((f) => f.slice(dist.length));
      expect(loaded).toEqual(expect.arrayContaining(['main.js', 'start-gateway.js', 'gateway/gateway.handler.js', 'limits/rate-limiter.js']));
      // Of the other features, only their queue names (the metrics' queue depths) and the price table (provider
      // models' costs) are shared with the gateway: no service, processor, controller or runtime of theirs.
      const shared = /\.queue\.js$|^evals\/prices\.js$/;
      const appOnly = loaded.filter((f) => /^(app\.module|start-app)\.js$|^(training|datasets|evals|webhooks|dashboard|storage)\//.test(f) && !shared.test(f));
      expect(appOnly).toEqual([]);
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  it('prints no welcome with --no-welcome (npm run dev prints its own once its serving pool is up)', async () => {
    const port = String(await freePort());
    const run = runMain(testEnv({ PORT: port, LOG_LEVEL: 'info' }), ['--no-welcome']);
    try {
      await whileRunning(run, 'the listening log line', async () => run.stdout().includes(`listening on http://localhost:${port}`));
      // The welcome would be written in the same turn as that line: once the app answers, it would be here.
      await whileRunning(run, 'readiness', async () => (await fetch(`http://localhost:${port}/readyz`).catch(() => null))?.status === 200);
      expect(run.stdout()).not.toContain('loraplane is running');
      expect(run.stdout()).not.toContain('Try it with');
    } finally {
      run.child.kill('SIGKILL');
    }
  });
});
