// Usage: node scripts/s3-server.mjs --port 9000 --bucket loraplane (--directory DIR | --temp)
// An S3-protocol server (s3rver) for development and tests, on 127.0.0.1, access key / secret S3RVER / S3RVER.
// scripts/lib/stack.mjs starts it detached; SIGTERM stops it (and removes the folder when it was --temp).
// Production uses a real S3 service (AWS S3, MinIO, Ceph RGW, R2): s3rver checks neither checksums nor POST policies.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import S3rver from 's3rver';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9000' },
    bucket: { type: 'string', multiple: true, default: [] },
    directory: { type: 'string' },
    temp: { type: 'boolean', default: false },
  },
});
if (!values.directory && !values.temp) throw new Error('give --directory DIR or --temp');
const directory = values.temp ? fs.mkdtempSync(path.join(os.tmpdir(), 'loraplane-s3-')) : path.resolve(values.directory);
fs.mkdirSync(directory, { recursive: true });

const server = new S3rver({
  address: '127.0.0.1',
  port: Number(values.port),
  directory,
  silent: true,
  configureBuckets: values.bucket.map((name) => ({ name })),
});
const { port } = await server.run();
console.log(`s3rver listening on http://127.0.0.1:${port} (pid ${process.pid}, data in ${directory})`);

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  // Keep-alive sockets from SDK clients would hold close() open until they time out.
  server.httpServer.closeAllConnections();
  await server.close();
  if (values.temp) fs.rmSync(directory, { recursive: true, force: true });
  console.log(`s3rver stopped (${signal})`);
  process.exit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
