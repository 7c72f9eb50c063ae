#!/usr/bin/env node
// npm run bench:headers [-- --rounds=14 --seconds=3]
// What OpenAI's six x-ratelimit-* headers cost node's own HTTP server, with no loraplane code at all: the part of
// bench:gateway's on/off CPU figure that no change to the gateway can remove while every answer under a limit
// carries them (issue 13). Four bare node:http servers, each answering every POST with the same small
// chat.completion JSON, differ only in their head:
//   none:      content-type and content-length (what "off" sends besides node's own Date/Connection/Keep-Alive);
//   six:       the same plus the six x-ratelimit-* headers with values like the gateway's;
//   one-long:  the same bytes as "six" in one header (what the bytes cost apart from the header count);
//   six-array: "six" given to writeHead as a flat array instead of an object.
// All four are under load at once (wrk, 16 connections each, loads started in a rotating order) for --seconds a
// round; each server's CPU per request (all threads, schedstat) is compared with "none" in the same round, and the
// medians over rounds are printed.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { arg, cpuPerRequestAtOnce, freePort, log, p50 } from './lib/bench.mjs';
import { ensureWrk, wrkLoad } from './lib/wrk-load.mjs';

const BODY = JSON.stringify({ id: 'chatcmpl-x', object: 'chat.completion', created: 1, model: 'zero', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } });
const LIMITS = {
  'x-ratelimit-limit-requests': '1000000000', 'x-ratelimit-remaining-requests': '999999123', 'x-ratelimit-reset-requests': '1ms',
  'x-ratelimit-limit-tokens': '1000000000', 'x-ratelimit-remaining-tokens': '999990123', 'x-ratelimit-reset-tokens': '12ms',
};
const LIMIT_BYTES = Object.entries(LIMITS).reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
const PAD = 'p'.repeat(LIMIT_BYTES - 'x-pad'.length - 4);

/** Each mode's head, built afresh for every answer as the gateway builds its own; then the body. */
const HEADS = {
  none: () => ({ 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) }),
  six: () => ({
    'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY),
    'x-ratelimit-limit-requests': LIMITS['x-ratelimit-limit-requests'], 'x-ratelimit-remaining-requests': LIMITS['x-ratelimit-remaining-requests'],
    'x-ratelimit-reset-requests': LIMITS['x-ratelimit-reset-requests'], 'x-ratelimit-limit-tokens': LIMITS['x-ratelimit-limit-tokens'],
    'x-ratelimit-remaining-tokens': LIMITS['x-ratelimit-remaining-tokens'], 'x-ratelimit-reset-tokens': LIMITS['x-ratelimit-reset-tokens'],
  }),
  'one-long': () => ({ 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY), 'x-pad': PAD }),
  'six-array': () => [
    'content-type', 'application/json', 'content-length', Buffer.byteLength(BODY),
    'x-ratelimit-limit-requests', LIMITS['x-ratelimit-limit-requests'], 'x-ratelimit-remaining-requests', LIMITS['x-ratelimit-remaining-requests'],
    'x-ratelimit-reset-requests', LIMITS['x-ratelimit-reset-requests'], 'x-ratelimit-limit-tokens', LIMITS['x-ratelimit-limit-tokens'],
    'x-ratelimit-remaining-tokens', LIMITS['x-ratelimit-remaining-tokens'], 'x-ratelimit-reset-tokens', LIMITS['x-ratelimit-reset-tokens'],
  ],
};

// A child process: one server of the mode given, on the port given.
if (process.argv[2] === '--serve') {
  const head = HEADS[process.argv[3]];
  http
    .createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, head()).end(BODY));
    })
    .listen(Number(process.argv[4]), '127.0.0.1', () => process.send?.('ready'));
} else {
  const ROUNDS = arg('rounds', 14);
  const SECONDS = arg('seconds', 3);
  await ensureWrk(log);
  const modes = Object.keys(HEADS);
  const servers = [];
  try {
    for (const mode of modes) {
      const port = await freePort();
      const child = spawn(process.execPath, [new URL(import.meta.url).pathname, '--serve', mode, String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      servers.push({ mode, child, url: `http://127.0.0.1:${port}/v1/chat/completions` });
      await new Promise((resolve, reject) => child.once('message', resolve).once('exit', (code) => reject(new Error(`${mode} server exited ${code}`))));
    }
    const body = JSON.stringify({ model: 'zero', messages: [{ role: 'user', content: 'hello' }] });
    const once = (s, seconds) => wrkLoad({ url: s.url, headers: {}, body, concurrency: 16, seconds });
    for (const s of servers) await once(s, 2); // warm-up: V8 optimises the path
    const cpu = Object.fromEntries(modes.map((m) => [m, []]));
    for (let r = 0; r < ROUNDS; r++) {
      (await cpuPerRequestAtOnce(servers, r, (s) => once(s, SECONDS))).forEach((us, i) => cpu[servers[i].mode].push(us));
      log(`round ${r + 1}: ${modes.map((m) => `${m} ${cpu[m].at(-1).toFixed(1)} us`).join(', ')}`);
    }
    console.log(`node:http's CPU per request, median over ${ROUNDS} rounds of ${SECONDS} s, four servers under load at once:`);
    for (const m of modes) {
      const worse = cpu[m].map((x, i) => (x / cpu.none[i] - 1) * 100);
      console.log(`  ${m.padEnd(10)} ${p50(cpu[m]).toFixed(1).padStart(6)} us  ${m === 'none' ? '' : `${p50(worse) >= 0 ? "+" : ""}${p50(worse).toFixed(1)} % CPU against none`}`);
    }
    console.log(`(the six x-ratelimit-* headers: ${LIMIT_BYTES} bytes of head; node ${process.version})`);
  } finally {
    for (const s of servers) s.child.kill();
  }
}
