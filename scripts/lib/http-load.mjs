#!/usr/bin/env node
// A keep-alive HTTP/1.1 load generator for the benches, in the manner of wrk: `concurrency` connections, each sends
// one request, reads the whole answer, then sends the next, until `total` answers are in. The request is built once
// and written as one buffer, and answers are parsed only as far as framing needs (status, content-length or chunked).
//
// Why not node:http's client: on this 2-core machine the load generator shares the CPUs with what it measures, and
// node:http's client costs about as much CPU per request as the gateway under test, so it was taking a large share
// of the capacity it was measuring. Production clients run elsewhere.
//
// `runLoad` runs it in a process of its own (so nothing else in the bench's event loop delays an answer's timing,
// and its own CPU is measured apart): it resolves with { rps, p50, cpuUs } (cpuUs: this generator's CPU per request).
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);

/** Where one answer ends in `buf` (null: not all there yet), its status and body. */
export function parseAnswer(buf) {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const head = buf.toString('latin1', 0, headEnd);
  const status = Number(head.slice(9, 12));
  const bodyStart = headEnd + 4;
  const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
  if (length) {
    const end = bodyStart + Number(length[1]);
    return buf.length < end ? null : { status, body: buf.subarray(bodyStart, end), consumed: end };
  }
  if (!/\r\ntransfer-encoding:[ \t]*chunked/i.test(head)) throw new Error(`an answer with neither content-length nor chunked encoding: ${head.split('\r\n')[0]}`);
  const parts = [];
  for (let at = bodyStart; ; ) {
    const lineEnd = buf.indexOf('\r\n', at);
    if (lineEnd < 0) return null;
    const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
    const start = lineEnd + 2;
    // The last chunk: no trailers are sent by the servers measured here, so a blank line ends the answer.
    if (size === 0) return buf.length < start + 2 ? null : { status, body: Buffer.concat(parts), consumed: start + 2 };
    if (buf.length < start + size + 2) return null;
    parts.push(buf.subarray(start, start + size));
    at = start + size + 2;
  }
}

/** Runs the load in this process: { rps, p50 } (ms), timed from when every connection is open to the last answer. */
export function load({ url, headers = {}, body, concurrency, total }) {
  const u = new URL(url);
  const payload = Buffer.from(body);
  const head = [`POST ${u.pathname}${u.search} HTTP/1.1`, `host: ${u.host}`, 'content-type: application/json', `content-length: ${payload.length}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  const request = Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), payload]);
  const latencies = new Float64Array(total);
  const n = Math.min(concurrency, total);
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = 0;
    let open = 0;
    let t0 = 0;
    let over = false;
    const sockets = [];
    const finish = (err) => {
      if (over) return;
      over = true;
      for (const s of sockets) s.destroy();
      if (err) return reject(err);
      const seconds = (performance.now() - t0) / 1000;
      const sorted = Array.from(latencies).sort((a, b) => a - b);
      resolve({ rps: total / seconds, p50: sorted[Math.floor(sorted.length / 2)] });
    };
    const connection = () => {
      const socket = net.connect({ host: u.hostname, port: Number(u.port) || 80 });
      socket.setNoDelay(true);
      let pending = null;
      let sentAt = -1;
      const next = () => {
        if (sent >= total) return;
        sent++;
        sentAt = performance.now();
        socket.write(request);
      };
      socket.once('connect', () => {
        if (++open < n) return;
        t0 = performance.now();
        for (const s of sockets) s.emit('go');
      });
      socket.once('go', next);
      socket.on('data', (chunk) => {
        pending = pending ? Buffer.concat([pending, chunk]) : chunk;
        let answer;
        try {
          answer = parseAnswer(pending);
        } catch (err) {
          return finish(err);
        }
        if (!answer) return;
        if (answer.consumed !== pending.length) return finish(new Error(`${url}: bytes after an answer that was not asked for`));
        pending = null;
        if (answer.status !== 200) return finish(new Error(`${url} answered ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`));
        latencies[answered++] = performance.now() - sentAt;
        sentAt = -1;
        if (answered === total) finish(null);
        else next();
      });
      socket.on('error', (err) => finish(new Error(`${url}: ${err.message}`)));
      socket.on('close', () => {
        if (over) return;
        // A server may close an idle kept-alive connection; one closed under a request is a failure.
        if (sentAt >= 0) finish(new Error(`${url} closed the connection before answering`));
        else if (sent < total) sockets[sockets.indexOf(socket)] = connection();
      });
      return socket;
    };
    for (let i = 0; i < n; i++) sockets.push(connection());
  });
}

/** Runs the load in a child process (on `cpu` with taskset when given) and resolves with { rps, p50, cpuUs }. */
export function runLoad(options, { cpu = null } = {}) {
  const args = [SELF, JSON.stringify(options)];
  const child = cpu === null ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn('taskset', ['-c', String(cpu), process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`the load generator exited with ${code}`))));
  });
}

if (process.argv[1] === SELF) {
  const options = JSON.parse(process.argv[2]);
  const cpu0 = process.cpuUsage();
  load(options).then(
    (result) => {
      const cpu = process.cpuUsage(cpu0);
      process.stdout.write(`${JSON.stringify({ ...result, cpuUs: (cpu.user + cpu.system) / options.total })}\n`);
    },
    (err) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
}
