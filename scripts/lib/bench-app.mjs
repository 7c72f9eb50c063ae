// What the benchmarks that boot the control plane share (bench-gateway, -api, -jobs, -serving, -evals): the test
// stack for this LORAPLANE_TEST_SLOT, a fresh production build, one bootstrap key, the environment every role gets,
// and the child processes to reap at the end. Each script adds only the load it generates and the figures it prints.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { ensureDeps } from './ensure-deps.mjs';
import { ROOT, run } from './bench.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it resolves truthy; the last error (if any) is in the timeout's message. */
export async function until(what, fn, ms = 20_000) {
  const deadline = Date.now() + ms;
  let last = null;
  while (!(await fn().catch((err) => ((last = err), false)))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(50);
  }
}

/**
 * Brings up the stack, builds dist/, and returns the app's environment (with a fresh bootstrap key and queue
 * prefix, so a run never meets an earlier run's queue entries). `overrides` are added to that environment.
 */
export async function prepareBench({ log, prefix, overrides = {} }) {
  await ensureDeps({ log });
  const { ensureStack } = await import('./stack.mjs');
  const stack = await ensureStack({ mode: 'test', log });
  const children = [];
  const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...process.env, ...stack.env };
  const key = `lp_${randomBytes(24).toString('hex')}`;
  const appEnv = {
    ...env, LORAPLANE_MODE: 'dev', LOG_LEVEL: 'warn', HOST: '127.0.0.1', QUEUE_PREFIX: `${prefix}${randomBytes(3).toString('hex')}`,
    S3_CREATE_BUCKET: 'true', LORAPLANE_API_KEY: key, ...overrides,
  };
  const bench = {
    stack, env, appEnv, key, auth: { authorization: `Bearer ${key}` }, children,
    /** dist/main.js's start() in this process (the roles appEnv asks for, on a free port). */
    async startInProcess(extra = {}) {
      const require = createRequire(import.meta.url);
      const { start } = require(path.join(ROOT, 'dist/main.js'));
      const { Config } = require(path.join(ROOT, 'dist/config/config.js'));
      return start(Config.fromEnv({ ...appEnv, PORT: '0', ...extra }));
    },
    /**
     * A node process (a role of dist/main.js, a tiny server, an agent), killed by close(). Its stdout (the app's log
     * lines) goes to `child.logPath`, for `logTail` when a run fails; close() deletes it.
     */
    spawnNode(args, childEnv, { nodeArgs = [] } = {}) {
      const logPath = path.join(os.tmpdir(), `bench-${prefix}-${process.pid}-${children.length}.log`);
      const out = fs.openSync(logPath, 'w');
      const child = spawn(process.execPath, [...nodeArgs, ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', out, 'inherit'] });
      fs.closeSync(out);
      children.push(Object.assign(child, { logPath }));
      return child;
    },
    /** The last `lines` lines each spawned process logged, under its command line. */
    logTail(lines = 15) {
      return children.map((c) => {
        const text = fs.existsSync(c.logPath) ? fs.readFileSync(c.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '';
        return `--- ${c.spawnargs.slice(1).join(' ')} (${c.logPath})\n${text || '(nothing logged)'}`;
      }).join('\n');
    },
    /**
     * Kills the children (SIGKILL unless asked otherwise, e.g. SIGINT for a CPU profile to be written), runs `then`
     * (closing an in-process app), and stops what the stack started for this run.
     */
    async close({ signal = 'SIGKILL', then = async () => undefined } = {}) {
      await Promise.all(children.map((c) => new Promise((resolve) => {
        if (c.exitCode !== null || c.signalCode !== null) return resolve();
        c.once('exit', resolve);
        c.kill(signal);
        setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
      })));
      await then().catch(() => undefined);
      for (const c of children) fs.rmSync(c.logPath, { force: true }); // a failed run printed its tail already
      await stack.stop?.();
    },
  };
  try {
    await run(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], env);
  } catch (err) {
    await stack.stop?.();
    throw err;
  }
  return bench;
}
