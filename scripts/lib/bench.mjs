import fs from 'node:fs';
// What the benchmark scripts (bench-jobs, bench-serving, bench-evals) share: flags, logging to stderr, running a
// build step, a free port, and the p50 summary they print. Each script prints its own figures on stdout.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** `--name=value` as a number, or `def`. */
export const arg = (name, def) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? def);
export const log = (line) => console.error(`[bench] ${line}`);

/** Runs a command in the repository to its end (e.g. tsc); rejects on a non-zero exit. */
export function run(bin, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${bin} ${args.join(' ')} exited ${code}`))));
  });
}

export async function freePort() {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

export const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
export const fmt = (xs) => `p50 ${p50(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;

/**
 * CPU seconds a process has run, all its threads (GC helpers, libuv's pool) included: the sum of each thread's
 * on-CPU nanoseconds from /proc/<pid>/task/<tid>/schedstat (Linux). /proc/<pid>/stat counts in 10 ms ticks, which
 * is several percent of a slice of a thousand requests.
 */
export function cpuSeconds(pid) {
  let ns = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read: its time is no longer counted anywhere
    }
  }
  return ns / 1e9;
}

/**
 * CPU per request (us) of each process in `targets` (each with its `child`), all under load at the same time, so
 * the machine's swings are the same for all of them. `loadOne(target)` loads one and resolves with its
 * `{ requests }`; the loads start one after the other from targets[first] on (the caller rotates `first`, so that no
 * target always starts first).
 */
export async function cpuPerRequestAtOnce(targets, first, loadOne) {
  const cpu0 = targets.map((t) => cpuSeconds(t.child.pid));
  const loads = new Array(targets.length);
  await Promise.all(
    targets.map((_, k) => {
      const i = (first + k) % targets.length;
      return loadOne(targets[i]).then((r) => (loads[i] = r));
    }),
  );
  return targets.map((t, i) => ((cpuSeconds(t.child.pid) - cpu0[i]) / loads[i].requests) * 1e6);
}
