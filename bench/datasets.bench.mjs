// Usage: npm run bench:datasets   (builds first; env BENCH_GB=1 BENCH_RSS_GB=2 BENCH_ROUNDS=5 to change the sizes)
//
// 1. Ingest throughput: a 1 GB chat JSONL file through DatasetsService.stage with the options POST /v1/files takes
//    for a request of that length (the path of POST /v1/files and of an upload's complete: stream, sha256, split into
//    lines, validate, S3 multipart upload; a file this large has its tokens counted by the worker afterwards)
//    against a raw @aws-sdk/lib-storage upload of the same file to the same S3 server, with the same part size and
//    queue size, alternating, in one run. Target: ratio >= 0.9, the median of the rounds' ratios
//    (each round pairs the two uploads, so a change in the machine's load between rounds cancels out).
// 2. The ingest thread's own work, alone in this thread (no upload, no S3): seconds per GiB to split and validate the
//    file with the fast path for plain chat lines and without it (every line through JSON.parse), and to sha256 it.
// 3. Memory: RSS growth of this process while a 2 GB file streams through the same ingest. Target: < 150 MB.
//
// The S3 server is a fresh s3rver (scripts/s3-server.mjs) on a free port with a temporary folder, the same server the
// tests use; numbers against AWS S3 or MinIO will differ, the comparison is what this measures.
import { S3Client, DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { cpuSeconds } from '../scripts/lib/bench.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const GB = 1024 ** 3;
const sizeGb = Number(process.env.BENCH_GB ?? 1);
const rssGb = Number(process.env.BENCH_RSS_GB ?? 2);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const BUCKET = 'bench';

function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startS3() {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/s3-server.mjs'), '--port', String(port), '--bucket', BUCKET, '--temp'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('listening') && resolve());
    child.on('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
  });
  return { endpoint: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => child.kill('SIGTERM') };
}

/** Chat examples of varied length and text, ~300-900 bytes each, as a stream of `bytes` bytes (whole lines). */
function chatStream(bytes, seed = 1) {
  const words = 'parcel order invoice refund shipping billing account password login error crash charge card delivery address tracking late damaged broken missing twice wrong plan upgrade cancel subscription receipt customs courier weekend'.split(' ');
  let state = seed;
  const rand = () => ((state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const sentence = (n) => Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]).join(' ');
  let produced = 0;
  let i = 0;
  return new Readable({
    read() {
      const lines = [];
      let size = 0;
      while (size < 1024 * 1024 && produced + size < bytes) {
        const line = JSON.stringify({
          messages: [
            { role: 'system', content: 'Route the support ticket to one team. Answer with the team name only.' },
            { role: 'user', content: `#${i++} ${sentence(20 + Math.floor(rand() * 120))}` },
            { role: 'assistant', content: words[Math.floor(rand() * 4)] },
          ],
        }) + '\n';
        lines.push(line);
        size += Buffer.byteLength(line);
      }
      if (size === 0) return this.push(null);
      produced += size;
      this.push(lines.join(''));
    },
  });
}

async function writeFile(file, bytes) {
  await new Promise((resolve, reject) => chatStream(bytes).pipe(fs.createWriteStream(file)).on('finish', resolve).on('error', reject));
}

async function emptyBucket(s3) {
  for (;;) {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    const keys = (res.Contents ?? []).map((o) => ({ Key: o.Key }));
    if (!keys.length) return;
    await s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys, Quiet: true } }));
  }
}

const fmtCpu = ({ self, s3 }) => `${self.toFixed(1)} / ${s3.toFixed(1)}`;
const mbps = (bytes, ms) => bytes / (1024 * 1024) / (ms / 1000);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Splits, validates and hashes the file in this thread, as the ingest thread does; prints seconds per GiB of each. */
async function validationAlone(file, size, options) {
  const { LineSplitter } = require(path.join(ROOT, 'dist/datasets/validation/line-splitter.js'));
  const { DatasetValidator } = require(path.join(ROOT, 'dist/datasets/validation/dataset-validator.js'));
  const { createHash } = await import('node:crypto');
  const perGib = (ms) => (ms / 1000 / (size / GB)).toFixed(2);
  const pass = async (work) => {
    const t = performance.now();
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) work.push(chunk);
    work.end();
    return performance.now() - t;
  };
  const validate = (fast) => {
    const validator = new DatasetValidator(options);
    const splitter = new LineSplitter(options.maxLineBytes, validator.onLine, fast ? validator.onBytes : undefined);
    return { push: (c) => splitter.push(c), end: () => splitter.end() };
  };
  const hash = createHash('sha256');
  const sha = await pass({ push: (c) => hash.update(c), end: () => hash.digest() });
  const fast = await pass(validate(true));
  const ordinary = await pass(validate(false));
  console.log(`VALIDATION alone in one thread, s/GiB (reading the file included): split + validate ${perGib(fast)} with the fast path for plain chat lines, ${perGib(ordinary)} without; sha256 ${perGib(sha)}`);
}

async function main() {
  const s3server = await startS3();
  const env = {
    ...process.env,
    LOG_LEVEL: 'warn',
    // Seals nothing here; production mode requires one.
    SECRETS_KEY: '0'.repeat(64),
    DATABASE_URL: 'postgresql://unused@127.0.0.1/unused',
    REDIS_URL: 'redis://127.0.0.1:6379',
    S3_ENDPOINT: s3server.endpoint,
    S3_BUCKET: BUCKET,
    S3_ACCESS_KEY_ID: 'S3RVER',
    S3_SECRET_ACCESS_KEY: 'S3RVER',
  };
  const { Config } = require(path.join(ROOT, 'dist/config/config.js'));
  const { ObjectStore } = require(path.join(ROOT, 'dist/storage/object-store.js'));
  const { ModelCatalog } = require(path.join(ROOT, 'dist/training/model-catalog.js'));
  const { DatasetsService } = require(path.join(ROOT, 'dist/datasets/datasets.service.js'));
  const config = Config.fromEnv(env);
  const store = new ObjectStore(config);
  // stage() touches neither Postgres nor the queue: it streams, hashes, validates and stores; registering is a row.
  const datasets = new DatasetsService(null, store, config, new ModelCatalog(config), null);
  const s3 = new S3Client({ endpoint: s3server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  // The options POST /v1/files chooses for a request of this many bytes: the file plus a multipart envelope.
  const optsFor = (bytes) => datasets.uploadOptions(undefined, String(bytes + 512), { maxBytes: Number.MAX_SAFE_INTEGER });

  const file = path.join(os.tmpdir(), `loraplane-bench-${process.pid}.jsonl`);
  try {
    const bytes = Math.round(sizeGb * GB);
    console.log(`writing a ${sizeGb} GB chat JSONL file to ${file} ...`);
    await writeFile(file, bytes);
    const size = fs.statSync(file).size;

    const raw = [];
    const ingest = [];
    // CPU seconds per round, of this process (all its threads: the upload, and for the ingest its thread) and of the
    // S3 server: on a machine whose cores are all busy, the ratio is set by how much more CPU the ingest needs.
    const cpu = { raw: [], ingest: [] };
    const cpuNow = () => ({ self: cpuSeconds(process.pid), s3: cpuSeconds(s3server.pid) });
    const cpuSince = (a) => {
      const b = cpuNow();
      return { self: b.self - a.self, s3: b.s3 - a.s3 };
    };
    let report;
    for (let r = 0; r < rounds; r++) {
      let c = cpuNow();
      let t = performance.now();
      // The same part size and queue size as ObjectStore.put.
      await new Upload({ client: s3, params: { Bucket: BUCKET, Key: `raw-${r}`, Body: fs.createReadStream(file) }, partSize: 8 * 1024 * 1024, queueSize: 2 }).done();
      raw.push(performance.now() - t);
      cpu.raw.push(cpuSince(c));
      await emptyBucket(s3);
      c = cpuNow();
      t = performance.now();
      const staged = await datasets.stage('bench', 'bench.jsonl', fs.createReadStream(file), optsFor(size));
      ingest.push(performance.now() - t);
      cpu.ingest.push(cpuSince(c));
      report = staged.report;
      if (!report.valid || staged.bytes !== size) throw new Error(`ingest did not validate the file: ${JSON.stringify(report.errors.slice(0, 3))}`);
      await emptyBucket(s3);
      console.log(`round ${r + 1}: raw lib-storage ${mbps(size, raw[r]).toFixed(1)} MiB/s, loraplane ingest ${mbps(size, ingest[r]).toFixed(1)} MiB/s, ratio ${(raw[r] / ingest[r]).toFixed(3)}; CPU s this process / S3 server: raw ${fmtCpu(cpu.raw[r])}, ingest ${fmtCpu(cpu.ingest[r])}`);
    }
    const rawMbps = mbps(size, median(raw));
    const ingestMbps = mbps(size, median(ingest));
    console.log(`file: ${(size / GB).toFixed(2)} GiB, ${report.examples} examples, tokens left to the worker (past TOKENIZE_INLINE_BYTES, ${config.env.TOKENIZE_INLINE_BYTES}): ${report.tokensDeferred}`);
    const ratio = median(raw.map((r, i) => r / ingest[i]));
    console.log(`THROUGHPUT raw=${rawMbps.toFixed(1)} MiB/s ingest=${ingestMbps.toFixed(1)} MiB/s ratio=${ratio.toFixed(3)} (target >= 0.9; median of ${rounds} rounds' ratios; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} cores)`);
    await validationAlone(file, size, optsFor(size));
    fs.rmSync(file, { force: true });

    // Memory: a generated 2 GB stream (no file needed), RSS sampled every 50 ms.
    global.gc?.();
    await new Promise((r) => setTimeout(r, 200));
    const base = process.memoryUsage().rss;
    let peak = base;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    const big = Math.round(rssGb * GB);
    const t = performance.now();
    const staged = await datasets.stage('bench', 'big.jsonl', chatStream(big, 7), optsFor(big));
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().rss);
    await emptyBucket(s3);
    console.log(`RSS ingesting ${(staged.bytes / GB).toFixed(2)} GiB (${staged.report.examples} examples, valid=${staged.report.valid}) at ${mbps(staged.bytes, performance.now() - t).toFixed(1)} MiB/s: baseline ${(base / 2 ** 20).toFixed(0)} MiB, peak ${(peak / 2 ** 20).toFixed(0)} MiB`);
    console.log(`RSS_GROWTH ${((peak - base) / 2 ** 20).toFixed(1)} MiB (target < 150 MB)`);
  } finally {
    fs.rmSync(file, { force: true });
    s3server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
