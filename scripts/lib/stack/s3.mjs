// The S3-protocol server (s3rver, scripts/s3-server.mjs): reused when something answers like S3 on the port,
// else started detached; a test run's server keeps its objects in a temporary folder and is stopped by stop().
import http from 'node:http';
import path from 'node:path';
import { ROOT } from '../migrations.mjs';
import { DATA_DIR, spawnDetached, waitFor, waitForStarted } from './system.mjs';

/** HEAD on the bucket: 200 = there, 404 = an S3 server without it, null = nothing listening. */
function headBucket(endpoint, bucket, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const request = http.request(new URL(`/${bucket}`, endpoint), { method: 'HEAD', timeout: timeoutMs }, (response) => {
      response.resume();
      resolve({ status: response.statusCode, xml: /xml/.test(response.headers['content-type'] ?? '') });
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', () => resolve(null));
    request.end();
  });
}

export async function ensureS3(mode, settings, log) {
  const endpoint = `http://127.0.0.1:${settings.s3Port}`;
  const found = await headBucket(endpoint, settings.bucket);
  if (found?.status === 200 || found?.status === 404) return { endpoint, how: 'running', stop: async () => undefined };
  if (found) throw new Error(`port ${settings.s3Port} answers, but not like an S3 server (HEAD /${settings.bucket}: ${found.status})`);
  const args = [path.join(ROOT, 'scripts/s3-server.mjs'), '--port', String(settings.s3Port), '--bucket', settings.bucket];
  args.push(...(mode === 'dev' ? ['--directory', path.join(DATA_DIR, 's3')] : ['--temp']));
  const started = spawnDetached(`s3-${mode}`, process.execPath, args);
  await waitForStarted(`s3rver on ${endpoint}`, started, async () => (await headBucket(endpoint, settings.bucket))?.status === 200, 15_000);
  const stop = async () => {
    if (started.exited()) return;
    started.child.kill('SIGTERM');
    await waitFor('s3rver to stop', () => started.exited() !== null, 5000, 25).catch(() => started.child.kill('SIGKILL'));
  };
  return { endpoint, how: `started (pid ${started.child.pid})`, stop };
}
