// Redis: probed and flushed over a raw socket (no client library to load); started without persistence when down.
import net from 'node:net';
import { aptInstall, run, tcpOpen, waitFor, which } from './system.mjs';

/** PING over a raw socket: a few ms, no client library to load. */
function redisAnswers(host, port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let reply = '';
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
  });
}

/** Empties one Redis database (SELECT n, FLUSHDB) over a raw socket. */
export function redisFlushDb(host, port, db) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let reply = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('Redis FLUSHDB timed out')));
    socket.once('connect', () => socket.write(`SELECT ${db}\r\nFLUSHDB\r\n`));
    socket.on('data', (chunk) => {
      reply += chunk;
      const lines = reply.split('\r\n').filter(Boolean);
      if (lines.length < 2) return;
      socket.destroy();
      if (lines.every((line) => line === '+OK')) resolve();
      else reject(new Error(`Redis FLUSHDB on db ${db}: ${reply.trim()}`));
    });
    socket.once('error', reject);
  });
}

export async function ensureRedis(redisUrl, log) {
  const url = new URL(redisUrl);
  const host = url.hostname;
  const port = Number(url.port || 6379);
  if (await redisAnswers(host, port)) return 'running';
  if (await tcpOpen(host, port)) throw new Error(`${host}:${port} is open but does not answer PING like Redis`);
  if (!['127.0.0.1', 'localhost'].includes(host)) throw new Error(`Redis at ${host}:${port} does not answer (not local)`);
  let how = 'started';
  if (!which('redis-server')) {
    await aptInstall(['redis-server'], log);
    how = 'installed and started';
  }
  if (!(await redisAnswers(host, port))) {
    // Nothing persisted: queues are rebuilt from PostgreSQL (ARCHITECTURE.md), and a dev machine needs no dump files.
    await run(which('redis-server'), ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no']);
  }
  await waitFor(`Redis on ${host}:${port}`, () => redisAnswers(host, port), 10_000);
  return how;
}
