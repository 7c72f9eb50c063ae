/**
 * The tiny-lora trainer image against a real Docker engine and an S3-protocol server (s3rver, in-process), run with
 * the hardening production uses. Proves the contract end to end: presigned GET in, presigned POST out, events on
 * stdout, exit codes.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import * as model from '../../jobs/tiny-lora/model';
import * as safetensors from '../../jobs/tiny-lora/safetensors';
import * as trainer from '../../jobs/tiny-lora/trainer';
import { JobSpec, TrainerEvent, trainerEventSchema } from '../../src/training/contract/job-contract';
import { makeTicketDataset, makeTicketSplit } from '../fixtures/tiny-task';

// s3rver ships no types; it is only used here and in scripts/s3-server.mjs.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver');

jest.setTimeout(180_000);

const REPO_ROOT = resolve(__dirname, '../..');
const IMAGE = 'loraplane/tiny-lora:dev';
const BUCKET = 'tiny-lora-it';
const MAX_BYTES = 8 * 1024 * 1024;
const RUN_LABEL = 'io.loraplane.test-run';
const RUN_ID = randomUUID();
const LORA = { r: 8, alpha: 16, dropout: 0.05, target_modules: ['lm_head'] };

const docker = new Docker();
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

interface ContainerRun {
  exitCode: number;
  oomKilled: boolean;
  events: TrainerEvent[];
  logs: string[];
  stderr: string[];
  ms: number;
}

/**
 * Run the trainer with production's hardening and collect its stdout as contract events (validated) and logs.
 * `onEvent` sees each event as it arrives, with the container (e.g. to stop it).
 */
async function runTrainer(spec: unknown, onEvent?: (e: TrainerEvent, c: Docker.Container) => void): Promise<ContainerRun> {
  const started = Date.now();
  const container = await docker.createContainer({
    Image: IMAGE,
    Env: [`LORAPLANE_JOB_SPEC=${JSON.stringify(spec)}`],
    User: '65534:65534',
    Labels: { [RUN_LABEL]: RUN_ID },
    HostConfig: {
      ReadonlyRootfs: true,
      Tmpfs: { '/scratch': 'rw,size=64m', '/tmp': 'rw,size=16m' },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Init: true,
      Memory: 512 * 1024 * 1024,
      MemorySwap: 512 * 1024 * 1024,
      PidsLimit: 64,
      NetworkMode: 'host', // reaches s3rver on 127.0.0.1
    },
  });
  try {
    await container.start();
    const stream = await container.logs({ follow: true, stdout: true, stderr: true });
    const out = new PassThrough();
    const err = new PassThrough();
    container.modem.demuxStream(stream, out, err);
    stream.on('end', () => {
      out.end();
      err.end();
    });
    const events: TrainerEvent[] = [];
    const logs: string[] = [];
    const stderr: string[] = [];
    const violations: string[] = [];
    const stdoutDone = new Promise<void>((done) => {
      createInterface({ input: out })
        .on('line', (line) => {
          if (!line.startsWith('{')) return void logs.push(line);
          const parsed = trainerEventSchema.safeParse(JSON.parse(line));
          if (!parsed.success) return void violations.push(line);
          events.push(parsed.data);
          onEvent?.(parsed.data, container);
        })
        .on('close', done);
    });
    createInterface({ input: err }).on('line', (line) => stderr.push(line));
    const { StatusCode } = await container.wait();
    await stdoutDone;
    const info = await container.inspect();
    expect(violations).toEqual([]); // every JSON line on stdout must be a contract event
    return { exitCode: StatusCode, oomKilled: info.State.OOMKilled, events, logs, stderr, ms: Date.now() - started };
  } finally {
    await container.remove({ force: true });
  }
}

describe('tiny-lora trainer container', () => {
  let s3dir: string;
  let server: any;
  let s3: S3Client;
  let endpoint: string;

  beforeAll(async () => {
    // scripts/lib/tiny-lora-image.mjs is ESM, which Jest's CommonJS runtime cannot import: run its CLI instead.
    const build = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'scripts/build-tiny-lora-image.mjs')], { cwd: REPO_ROOT });
    const image = JSON.parse(build.stdout);
    console.info(`image ${image.tag}: ${image.built ? 'built' : 'up to date'} in ${image.ms} ms`);

    s3dir = mkdtempSync(join(tmpdir(), 'tiny-lora-s3-'));
    server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: s3dir });
    const { port } = await server.run();
    endpoint = `http://127.0.0.1:${port}`;
    s3 = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });

  afterAll(async () => {
    const leftovers = await docker.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${RUN_ID}`] } });
    await Promise.all(leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    s3?.destroy();
    if (server?.httpServer) {
      server.httpServer.closeAllConnections(); // keep-alive sockets would hold close() open
      await server.close();
    }
    if (s3dir) rmSync(s3dir, { recursive: true, force: true });
  });

  async function putDataset(key: string, text: string) {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: text }));
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 600 });
    return { url, sha256: sha256(text), bytes: Buffer.byteLength(text) };
  }

  /** What the control plane does: a POST policy for prefix + ${filename}, without the `key` field (the trainer sets it). */
  async function outputFor(prefix: string): Promise<JobSpec['output']> {
    const post = await createPresignedPost(s3, {
      Bucket: BUCKET,
      Key: `${prefix}\${filename}`,
      Conditions: [['content-length-range', 0, MAX_BYTES]],
      Expires: 600,
    });
    const { key: _key, ...fields } = post.fields;
    return { url: post.url, fields, key_prefix: prefix, max_bytes: MAX_BYTES, expires_at: Math.floor(Date.now() / 1000) + 600 };
  }

  async function specFor(name: string, trainingText: string, validationText: string | null = null): Promise<JobSpec> {
    return {
      contract_version: 1,
      job_id: `ftjob-${name}`,
      attempt: 1,
      model: { name: 'tiny-lora', weights: 'tiny-lora-base-v1' },
      method: 'supervised',
      seed: 7,
      hyperparameters: { n_epochs: 2, batch_size: 8, learning_rate: 0.05, lora: LORA },
      data: {
        training_file: await putDataset(`datasets/${name}/train.jsonl`, trainingText),
        validation_file: validationText === null ? null : await putDataset(`datasets/${name}/valid.jsonl`, validationText),
      },
      output: await outputFor(`artifacts/${name}/attempt-1/`),
    };
  }

  async function getObject(key: string): Promise<Buffer> {
    const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  it('trains, uploads a PEFT adapter through the presigned POST, and reports it', async () => {
    const split = makeTicketSplit({ nTrain: 600, nHeldOut: 200, seed: 7 });
    const spec = await specFor('ok', split.trainJsonl, split.heldOutJsonl);
    const run = await runTrainer(spec);
    console.info(`tiny-lora container run: ${run.ms} ms (create to removal), exit ${run.exitCode}`);
    expect(run).toMatchObject({ exitCode: 0, oomKilled: false });

    const statuses = run.events.flatMap((e) => (e.type === 'status' ? [e.status] : []));
    expect(statuses).toEqual(['starting', 'loading_data', 'training', 'saving', 'uploading', 'completed']);
    const kinds = run.events.map((e) => (e.type === 'status' ? e.status : e.type));
    // metrics only while training; the artifact just before completed
    expect(kinds.slice(kinds.indexOf('training') + 1, kinds.indexOf('saving')).every((k) => k === 'metrics')).toBe(true);
    expect(kinds.slice(-2)).toEqual(['artifact', 'completed']);
    const metrics = run.events.filter((e) => e.type === 'metrics');
    expect(metrics.at(-1)).toMatchObject({ step: 150, total_steps: 150, epoch: 2 });
    expect(metrics.at(-1)!.valid_mean_token_accuracy).toBeGreaterThanOrEqual(0.85);

    const artifact = run.events.find((e) => e.type === 'artifact')!;
    expect(artifact).toMatchObject({ kind: 'adapter', key_prefix: spec.output.key_prefix });
    expect(artifact.files.map((f) => f.name)).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const stored: Record<string, Buffer> = {};
    for (const f of artifact.files) {
      stored[f.name] = await getObject(spec.output.key_prefix + f.name);
      expect({ bytes: stored[f.name].length, sha256: sha256(stored[f.name]) }).toEqual({ bytes: f.bytes, sha256: f.sha256 });
    }
    const { tensors } = safetensors.deserialize(stored['adapter_model.safetensors']);
    expect(tensors[model.LORA_A_NAME].shape).toEqual([8, model.D]);
    expect(tensors[model.LORA_B_NAME].shape).toEqual([model.V, 8]);

    // The uploaded adapter works, and is byte-identical to the same training run in-process.
    const adapter = model.parseAdapter(JSON.parse(stored['adapter_config.json'].toString()), stored['adapter_model.safetensors']);
    const hits = split.heldOut.filter((e) => model.predict(e.messages.slice(0, 2), adapter).answer === e.label).length;
    expect(hits / split.heldOut.length).toBeGreaterThanOrEqual(0.85);
    const local = await trainer.train(trainer.examplesFromJsonl(split.trainJsonl), { seed: spec.seed, ...spec.hyperparameters });
    expect(Buffer.concat(trainer.adapterFiles(local, LORA).map((f) => f.data)).equals(Buffer.concat(Object.values(stored)))).toBe(true);
    expect(artifact.trained_tokens).toBe(local.trainedTokens);
  });

  it('exits 2 with invalid_spec for a spec that breaks the contract', async () => {
    const spec = await specFor('bad-spec', makeTicketDataset({ n: 20, seed: 1 }));
    spec.hyperparameters.n_epochs = 0;
    const run = await runTrainer(spec);
    expect(run.exitCode).toBe(2);
    expect(run.events).toEqual([{ type: 'error', code: 'invalid_spec', message: expect.stringContaining('hyperparameters.n_epochs') }]);
  });

  it('exits 3 with invalid_data naming the line whose answer is not in the vocabulary', async () => {
    const lines = makeTicketDataset({ n: 10, seed: 2 }).trim().split('\n');
    lines[2] = JSON.stringify({
      messages: [
        { role: 'user', content: 'My parcel never came' },
        { role: 'assistant', content: 'Sounds like a shipping problem.' },
      ],
    });
    const run = await runTrainer(await specFor('bad-row', `${lines.join('\n')}\n`));
    expect(run.exitCode).toBe(3);
    const error = run.events.at(-1);
    expect(error).toMatchObject({ type: 'error', code: 'invalid_data', line: 3 });
    expect(error).toHaveProperty('message', expect.stringMatching(/^training file line 3: assistant answer "Sounds like a shipping problem\." is not a word/));
  });

  it('exits 4 with data_unreachable when the data does not match its sha256', async () => {
    const spec = await specFor('bad-hash', makeTicketDataset({ n: 20, seed: 3 }));
    spec.data.training_file.sha256 = '0'.repeat(64);
    const run = await runTrainer(spec);
    expect(run.exitCode).toBe(4);
    expect(run.events.at(-1)).toMatchObject({ type: 'error', code: 'data_unreachable', message: expect.stringContaining('sha256') });
  });

  it('exits 5 with upload_failed when the object store refuses the upload', async () => {
    const spec = await specFor('bad-upload', makeTicketDataset({ n: 20, seed: 3 }));
    spec.output.fields.Policy = Buffer.from('{"conditions":[]}').toString('base64'); // breaks the signature
    spec.output.url = `${endpoint}/no-such-bucket`;
    const run = await runTrainer(spec);
    expect(run.exitCode).toBe(5);
    expect(run.events.at(-1)).toMatchObject({ type: 'error', code: 'upload_failed', message: expect.stringContaining('adapter_config.json') });
    expect(run.events.some((e) => e.type === 'artifact')).toBe(false);
  });

  it('stops on SIGTERM with a cancelled event and exit 143', async () => {
    const spec = await specFor('sigterm', makeTicketDataset({ n: 600, seed: 4 }));
    spec.hyperparameters.n_epochs = 500; // minutes of work: it must be the signal that ends it
    let stopAsked = 0;
    const run = await runTrainer(spec, (event, container) => {
      if (event.type === 'metrics' && stopAsked === 0) {
        stopAsked = Date.now();
        void container.stop({ t: 10 });
      }
    });
    expect(stopAsked).toBeGreaterThan(0);
    expect(run.exitCode).toBe(143);
    expect(run.events.at(-1)).toMatchObject({ type: 'error', code: 'cancelled' });
    expect(Date.now() - stopAsked).toBeLessThan(5_000); // well inside the grace period
  });
});
