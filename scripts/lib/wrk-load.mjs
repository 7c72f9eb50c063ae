// Load from wrk (https://github.com/wg/wrk, Debian's package; installed here with apt-get when missing): keep-alive
// HTTP/1.1 in C on epoll, the usual tool for measuring an HTTP server's throughput and latency.
//
// Why wrk rather than the raw-socket generator this bench had (scripts/lib/http-load.mjs, removed): on this 2-core
// machine the load generator shares the CPUs with what it measures; that one cost 70-95 us of CPU per request here,
// wrk 20-40 (mostly the kernel's loopback), so far less of the capacity being measured goes to the measuring.
//
// `wrkLoad` runs `concurrency` connections on one wrk thread for `seconds` and resolves with { rps, p50 (ms), requests,
// cpuUs (wrk's own CPU per request, user + system, from bash's `times`) }. Any error answer (status >= 400) or
// socket error fails it, naming the counts.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { aptInstall } from './stack/system.mjs';

/** wrk on the PATH, installed from Debian's archive when it is not. */
export async function ensureWrk(log) {
  const found = () => {
    try {
      execFileSync('wrk', ['--version'], { stdio: 'ignore' });
      return true;
    } catch (err) {
      // wrk --version prints its usage and exits 1; only a missing binary throws ENOENT.
      return err.code !== 'ENOENT';
    }
  };
  if (!found()) await aptInstall(['wrk'], log);
  if (!found()) throw new Error('wrk is not installed and apt-get could not install it');
}

/** The Lua script that sets the request and prints wrk's summary as one parseable line. */
export function wrkScript({ headers = {}, body }) {
  const long = (s) => {
    // A Lua long string whose closing bracket does not occur in the text.
    let eq = '';
    while (s.includes(`]${eq}]`)) eq += '=';
    return `[${eq}[${s}]${eq}]`;
  };
  return [
    'wrk.method = "POST"',
    `wrk.body = ${long(body)}`,
    'wrk.headers["content-type"] = "application/json"',
    ...Object.entries(headers).map(([k, v]) => `wrk.headers[ ${long(k)} ] = ${long(String(v))}`),
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format("WRK-SUMMARY %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration, latency:percentile(50), e.status, e.connect, e.read, e.write, e.timeout))',
    'end',
  ].join('\n');
}

/** The summary line and bash's `times` (its second line: the children's user and system time) from the output. */
export function parseWrkOutput(stdout) {
  const m = /WRK-SUMMARY (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(stdout);
  if (!m) throw new Error(`wrk printed no summary:\n${stdout.slice(-2000)}`);
  const [requests, durationUs, p50Us, status, connect, read, write, timeout] = m.slice(1).map(Number);
  const times = [...stdout.matchAll(/(\d+)m([\d.]+)s (\d+)m([\d.]+)s/g)].at(-1);
  const cpuSeconds = times ? Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4]) : NaN;
  return { requests, durationUs, p50Us, errors: { status, connect, read, write, timeout }, cpuSeconds };
}

export async function wrkLoad({ url, headers, body, concurrency, seconds }, { cpu = null } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wrk-'));
  const script = path.join(dir, 'load.lua');
  fs.writeFileSync(script, wrkScript({ headers, body }));
  const wrk = [...(cpu === null ? [] : ['taskset', '-c', String(cpu)]), 'wrk', '-t1', `-c${concurrency}`, `-d${seconds}s`, '--timeout', '10s', '-s', script, url];
  try {
    const stdout = await new Promise((resolve, reject) => {
      // bash's `times` after wrk has exited: the CPU it used (its children's times).
      const child = spawn('bash', ['-c', '"$@"; s=$?; times; exit $s', 'wrk-load', ...wrk], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('error', reject);
      // 'close', not 'exit': 'exit' can come before the last of stdout has been read (a busy machine showed it:
      // an empty output from a wrk that had exited 0).
      child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited with ${code}:\n${out.slice(-2000)}`))));
    });
    const r = parseWrkOutput(stdout);
    const failed = Object.entries(r.errors).filter(([, n]) => n > 0);
    if (failed.length > 0) throw new Error(`wrk against ${url}: ${failed.map(([k, n]) => `${n} ${k} errors`).join(', ')} in ${r.requests} requests`);
    if (r.requests === 0) throw new Error(`wrk against ${url}: no request completed in ${seconds} s`);
    return { rps: r.requests / (r.durationUs / 1e6), p50: r.p50Us / 1000, requests: r.requests, cpuUs: (r.cpuSeconds / r.requests) * 1e6 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
