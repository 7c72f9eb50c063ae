/**
 * The trainer conformance suite (jobs/CONTRACT.md section 10): ONE suite, run against a trainer image, that proves the
 * contract from the outside. The container runs on the real Docker engine with production's hardening (non-root,
 * read-only root fs, tmpfs scratch, no capabilities, init), talks to a real S3-protocol server (s3rver) through
 * presigned GET and POST, and is judged only by its stdout events, exit code and the bytes it uploaded.
 *
 * tiny-lora runs in CI. Another image runs the same suite when named: LORAPLANE_CONFORMANCE_IMAGE=loraplane/gpt-oss-lora:dev
 * with LORAPLANE_CONFORMANCE_WEIGHTS=/host/path/to/a/small/gpt-oss checkpoint (mounted read-only at /weights) on a
 * GPU host. That profile has not been run yet: no GPU machine was available.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
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
import { ArtifactFile, JobSpec, TrainerEvent, trainerEventSchema, TRAINER_EXIT } from '../../src/training/contract/job-contract';
import { makeTicketDataset, makeTicketSplit, TicketExample } from '../fixtures/tiny-task';

// s3rver ships no types; it is only used here and in scripts/s3-server.mjs.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver');

jest.setTimeout(180_000);

const REPO_ROOT = resolve(__dirname, '../..');
const BUCKET = 'conformance';
const MAX_BYTES = 64 * 1024 * 1024;
const RUN_LABEL = 'io.loraplane.test-run';
const RUN_ID = randomUUID();
const GRACE_SECONDS = 10;

const docker = new Docker();
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

type Hyperparameters = JobSpec['hyperparameters'];

/** What differs between trainer images; everything else in the suite is the contract. */
interface TrainerProfile {
  image: string;
  /** Make sure the image exists (tiny-lora: build it offline). */
  prepare(): Promise<void>;
  model: JobSpec['model'];
  /** A short run, and a run long enough that a SIGTERM after its first metrics event lands mid-training. */
  quick: Hyperparameters;
  long: Hyperparameters;
  checkpointEvery: number;
  /** Same spec and data give the same adapter bytes (resumed or not). GPU kernels need not promise it. */
  deterministic: boolean;
  hostConfig: Docker.ContainerCreateOptions['HostConfig'];
  /** The file a trainer uploads first, when it says (its upload_failed message should name it). */
  firstUpload?: string;
  /** Image-specific checks of the final adapter (tiny-lora: it learned the task, held-out examples given). */
  checkAdapter?(files: Record<string, Buffer>, spec: JobSpec, heldOut: TicketExample[]): Promise<void>;
}

const HARDENING: Docker.ContainerCreateOptions['HostConfig'] = {
  ReadonlyRootfs: true,
  Tmpfs: { '/scratch': 'rw,size=256m', '/tmp': 'rw,size=16m' },
  CapDrop: ['ALL'],
  SecurityOpt: ['no-new-privileges'],
  Init: true,
  PidsLimit: 64,
  NetworkMode: 'host', // reaches s3rver on 127.0.0.1
};

const TINY_LORA: TrainerProfile = {
  image: '', // set by prepare(): the tag of these sources
  async prepare() {
    // scripts/lib/tiny-lora-image.mjs is ESM, which Jest's CommonJS runtime cannot import: run its CLI instead. The
    // content tag names these sources, so a test run from another checkout cannot swap the image under this one.
    const build = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'scripts/build-tiny-lora-image.mjs'), '--content-tag'], { cwd: REPO_ROOT });
    const image = JSON.parse(build.stdout);
    this.image = image.tag;
    console.info(`image ${image.tag}: ${image.built ? 'built' : 'up to date'} in ${image.ms} ms`);
  },
  model: { name: 'tiny-lora', weights: 'tiny-lora-base-v2' },
  quick: { n_epochs: 2, batch_size: 8, learning_rate: 0.05, lora: { r: 8, alpha: 16, dropout: 0.05, target_modules: ['lm_head'] } },
  // 600 examples x 20 epochs = 1500 steps, several seconds: the first metrics event comes at step 75.
  long: { n_epochs: 20, batch_size: 8, learning_rate: 0.05, lora: { r: 8, alpha: 16, dropout: 0.05, target_modules: ['lm_head'] } },
  checkpointEvery: 50,
  deterministic: true,
  firstUpload: 'adapter_config.json',
  hostConfig: { ...HARDENING, Memory: 512 * 1024 * 1024, MemorySwap: 512 * 1024 * 1024 },
  async checkAdapter(files, spec, heldOut) {
    const { tensors } = safetensors.deserialize(files['adapter_model.safetensors']);
    expect(tensors[model.LORA_A_NAME].shape).toEqual([spec.hyperparameters.lora.r, model.D]);
    expect(tensors[model.LORA_B_NAME].shape).toEqual([model.V, spec.hyperparameters.lora.r]);
    // The uploaded adapter works on held-out tickets, and is byte-identical to the same training run in-process.
    const adapter = model.parseAdapter(JSON.parse(files['adapter_config.json'].toString()), files['adapter_model.safetensors']);
    const hits = heldOut.filter((e) => model.predict(e.messages.slice(0, 2), adapter).answer === e.label).length;
    expect(hits / heldOut.length).toBeGreaterThanOrEqual(0.85);
    const examples = trainer.examplesFromJsonl(makeTicketSplit(SPLIT).trainJsonl);
    const local = await trainer.train(examples, { seed: spec.seed, ...spec.hyperparameters });
    const localFiles = trainer.adapterFiles(local, spec.hyperparameters.lora);
    for (const f of localFiles) expect(f.data.equals(files[f.name])).toBe(true);
  },
};

/** A GPU host's view: the GPT-OSS image with a small checkpoint mounted at /weights (see the header comment). */
function gptOssProfile(image: string, weightsDir: string): TrainerProfile {
  const lora = { r: 8, alpha: 16, dropout: 0, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'mlp.experts.gate_up_proj', 'mlp.experts.down_proj'] };
  return {
    image,
    async prepare() {
      await docker.getImage(image).inspect(); // built beforehand with jobs/gpt-oss-lora/Dockerfile
    },
    model: { name: 'gpt-oss-20b', weights: '/weights' },
    quick: { n_epochs: 1, batch_size: 4, learning_rate: 2e-4, lora },
    long: { n_epochs: 20, batch_size: 4, learning_rate: 2e-4, lora },
    checkpointEvery: 50,
    deterministic: false,
    hostConfig: {
      ...HARDENING,
      Tmpfs: { '/scratch': 'rw,size=64g', '/tmp': 'rw,size=1g' },
      PidsLimit: 4096,
      Binds: [`${weightsDir}:/weights:ro`],
      DeviceRequests: [{ Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] }],
    },
  };
}

const SPLIT = { nTrain: 600, nHeldOut: 200, seed: 7 };

const PROFILES: TrainerProfile[] = process.env.LORAPLANE_CONFORMANCE_IMAGE
  ? [gptOssProfile(process.env.LORAPLANE_CONFORMANCE_IMAGE, process.env.LORAPLANE_CONFORMANCE_WEIGHTS ?? '/models/gpt-oss-tiny')]
  : [TINY_LORA];

interface ContainerRun {
  exitCode: number;
  oomKilled: boolean;
  events: TrainerEvent[];
  violations: string[];
  output: string;
  ms: number;
}

/**
 * Run the trainer and collect its stdout as contract events (validated) and everything else as text.
 * `onEvent` sees each event as it arrives, with the container (e.g. to stop it).
 */
async function runTrainer(profile: TrainerProfile, spec: unknown, onEvent?: (e: TrainerEvent, c: Docker.Container) => void): Promise<ContainerRun> {
  const started = Date.now();
  const container = await docker.createContainer({
    Image: profile.image,
    Env: [`LORAPLANE_JOB_SPEC=${typeof spec === 'string' ? spec : JSON.stringify(spec)}`, 'LORAPLANE_SCRATCH_DIR=/scratch'],
    User: '65534:65534',
    Labels: { [RUN_LABEL]: RUN_ID },
    HostConfig: profile.hostConfig,
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
    const violations: string[] = [];
    const text: string[] = [];
    const stdoutDone = new Promise<void>((done) => {
      createInterface({ input: out })
        .on('line', (line) => {
          text.push(line);
          let value: unknown;
          try {
            value = JSON.parse(line);
          } catch {
            return; // a log line
          }
          if (typeof value !== 'object' || value === null || !('type' in value)) return;
          const parsed = trainerEventSchema.safeParse(value);
          if (!parsed.success) return void violations.push(line);
          events.push(parsed.data);
          onEvent?.(parsed.data, container);
        })
        .on('close', done);
    });
    createInterface({ input: err }).on('line', (line) => text.push(line));
    const { StatusCode } = await container.wait();
    await stdoutDone;
    const info = await container.inspect();
    return { exitCode: StatusCode, oomKilled: info.State.OOMKilled, events, violations, output: text.join('\n'), ms: Date.now() - started };
  } finally {
    await container.remove({ force: true });
  }
}

/** A port nothing listens on: connections to it are refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

/** A standard reader's view of a safetensors file: Python's struct + json + numpy, nothing of ours. */
function readSafetensorsWithNumpy(data: Buffer): Record<string, { dtype: string; shape: number[]; finite: boolean }> {
  const code = [
    'import json, struct, sys, numpy as np',
    'buf = sys.stdin.buffer.read()',
    '(n,) = struct.unpack("<Q", buf[:8])',
    'header = json.loads(buf[8:8 + n])',
    'header.pop("__metadata__", None)',
    'out = {}',
    'for name, t in header.items():',
    '    a = np.frombuffer(buf[8 + n + t["data_offsets"][0]: 8 + n + t["data_offsets"][1]], dtype={"F32": "<f4", "BF16": "<u2", "F16": "<f2"}[t["dtype"]]).reshape(t["shape"])',
    '    out[name] = {"dtype": t["dtype"], "shape": list(a.shape), "finite": bool(np.isfinite(a).all()) if t["dtype"] != "BF16" else True}',
    'print(json.dumps(out))',
  ].join('\n');
  const run = spawnSync('python3', ['-c', code], { input: data, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`python3 could not read the safetensors file: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

describe.each(PROFILES.map((p) => [p.model.name, p] as const))('trainer conformance: %s', (_name, profile) => {
  let s3dir: string;
  let server: any;
  let s3: S3Client;
  let endpoint: string;
  const split = makeTicketSplit(SPLIT);

  beforeAll(async () => {
    await profile.prepare();
    s3dir = mkdtempSync(join(tmpdir(), 'conformance-s3-'));
    server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: s3dir });
    const { port } = await server.run();
    endpoint = `http://127.0.0.1:${port}`;
    s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
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

  async function presignGet(key: string) {
    return getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 600 });
  }

  async function putDataset(key: string, text: string) {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: text }));
    return { url: await presignGet(key), sha256: sha256(text), bytes: Buffer.byteLength(text) };
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

  async function specFor(name: string, trainingText: string, options: { validation?: string; hp?: Hyperparameters; attempt?: number } = {}): Promise<JobSpec> {
    const attempt = options.attempt ?? 1;
    return {
      contract_version: 1,
      job_id: `ftjob-${name}`,
      attempt,
      model: profile.model,
      method: 'supervised',
      seed: 7,
      hyperparameters: options.hp ?? profile.quick,
      data: {
        training_file: await putDataset(`datasets/${name}/train.jsonl`, trainingText),
        validation_file: options.validation === undefined ? null : await putDataset(`datasets/${name}/valid.jsonl`, options.validation),
      },
      output: await outputFor(`artifacts/${name}/attempt-${attempt}/`),
      stop_grace_seconds: GRACE_SECONDS,
    };
  }

  async function getObject(key: string): Promise<Buffer> {
    const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  /** Every announced file is in S3 under the announced prefix with the announced size and sha256. */
  async function expectUploaded(prefix: string, files: ArtifactFile[]): Promise<Record<string, Buffer>> {
    const stored: Record<string, Buffer> = {};
    for (const f of files) {
      stored[f.name] = await getObject(prefix + f.name);
      expect({ name: f.name, bytes: stored[f.name].length, sha256: sha256(stored[f.name]) }).toEqual(f);
    }
    return stored;
  }

  /** The contract's general rules for any run: only valid events, no secrets printed, one error event at most, last. */
  function expectWellFormed(run: ContainerRun, spec: JobSpec) {
    expect(run.violations).toEqual([]);
    expect(run.oomKilled).toBe(false);
    for (const secret of [spec.output.fields['X-Amz-Signature'], new URL(spec.data.training_file.url).searchParams.get('X-Amz-Signature')]) {
      if (secret) expect(run.output).not.toContain(secret);
    }
    const errors = run.events.filter((e) => e.type === 'error');
    expect(errors.length).toBeLessThanOrEqual(1);
    if (errors.length === 1) expect(run.events.at(-1)).toBe(errors[0]);
  }

  const statusesOf = (run: ContainerRun) => run.events.flatMap((e) => (e.type === 'status' ? [e.status] : []));
  const metricsOf = (run: ContainerRun) => run.events.filter((e): e is Extract<TrainerEvent, { type: 'metrics' }> => e.type === 'metrics');
  const checkpointsOf = (run: ContainerRun) => run.events.filter((e): e is Extract<TrainerEvent, { type: 'checkpoint' }> => e.type === 'checkpoint');

  it('valid spec: events in order, checkpoints and the PEFT adapter uploaded with matching sha256, exit 0', async () => {
    const spec = { ...(await specFor('ok', split.trainJsonl, { validation: split.heldOutJsonl })), checkpoint_every_steps: profile.checkpointEvery };
    const run = await runTrainer(profile, spec);
    console.info(`${profile.image} valid run: ${run.ms} ms (create to removal), exit ${run.exitCode}`);
    expect(run.exitCode).toBe(TRAINER_EXIT.ok);
    expectWellFormed(run, spec);

    // Statuses in the contract's order; metrics and checkpoints only while training; the artifact just before completed.
    const order = ['starting', 'loading_data', 'training', 'saving', 'uploading', 'completed'];
    const statuses = statusesOf(run);
    expect(statuses).toEqual(order.filter((s) => statuses.includes(s as never)));
    expect(statuses).toEqual(expect.arrayContaining(['starting', 'training', 'completed']));
    const kinds = run.events.map((e) => (e.type === 'status' ? e.status : e.type));
    const during = kinds.slice(kinds.indexOf('training') + 1, kinds.findIndex((k, i) => i > kinds.indexOf('training') && order.includes(k)));
    expect(during.length).toBeGreaterThan(0);
    expect(during.every((k) => k === 'metrics' || k === 'checkpoint')).toBe(true);
    expect(kinds.slice(-2)).toEqual(['artifact', 'completed']);

    // The loss curve: steps never go back, up to total_steps; a step repeats only to add validation values (a
    // transformers evaluation log comes after the step's training log); validation metrics at the end.
    const metrics = metricsOf(run);
    const steps = metrics.map((m) => m.step);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    metrics.forEach((m, i) => {
      if (i > 0 && m.step === metrics[i - 1].step) expect(m.valid_loss).toEqual(expect.any(Number));
    });
    const last = metrics.at(-1)!;
    expect(last.step).toBe(last.total_steps);
    expect(last.valid_loss).toEqual(expect.any(Number));

    // Checkpoints at every N-th step before the last, each uploaded under checkpoint-<step>/ with matching bytes.
    const checkpoints = checkpointsOf(run);
    const expected = Array.from({ length: Math.ceil(last.total_steps / profile.checkpointEvery) - 1 }, (_, i) => (i + 1) * profile.checkpointEvery);
    expect(checkpoints.map((c) => c.step)).toEqual(expected);
    for (const c of checkpoints) {
      expect(c.key_prefix).toBe(`${spec.output.key_prefix}checkpoint-${c.step}/`);
      expect(c.files.map((f) => f.name)).toEqual(expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors']));
      await expectUploaded(c.key_prefix, c.files);
    }

    // The adapter: a PEFT directory a standard reader parses.
    const artifact = run.events.find((e): e is Extract<TrainerEvent, { type: 'artifact' }> => e.type === 'artifact')!;
    expect(artifact).toMatchObject({ kind: 'adapter', key_prefix: spec.output.key_prefix });
    const stored = await expectUploaded(artifact.key_prefix, artifact.files);
    const config = JSON.parse(stored['adapter_config.json'].toString());
    expect(config).toMatchObject({
      peft_type: 'LORA',
      base_model_name_or_path: expect.any(String),
      r: spec.hyperparameters.lora.r,
      lora_alpha: spec.hyperparameters.lora.alpha,
      target_modules: expect.anything(),
    });
    const tensors = readSafetensorsWithNumpy(stored['adapter_model.safetensors']);
    expect(Object.keys(tensors).some((n) => n.includes('lora_A'))).toBe(true);
    expect(Object.keys(tensors).some((n) => n.includes('lora_B'))).toBe(true);
    expect(Object.values(tensors).every((t) => t.finite)).toBe(true);
    await profile.checkAdapter?.(stored, spec, split.heldOut);
  });

  it('bad spec: invalid_spec, exit 2, before any download', async () => {
    const spec = await specFor('bad-spec', makeTicketDataset({ n: 20, seed: 1 }));
    spec.hyperparameters = { ...spec.hyperparameters, n_epochs: 0 };
    const run = await runTrainer(profile, spec);
    expect(run.exitCode).toBe(TRAINER_EXIT.invalid_spec);
    expectWellFormed(run, spec);
    expect(run.events).toEqual([{ type: 'error', code: 'invalid_spec', message: expect.stringContaining('n_epochs') }]);

    const notJson = await runTrainer(profile, 'not json');
    expect(notJson.exitCode).toBe(TRAINER_EXIT.invalid_spec);
    expect(notJson.events).toEqual([{ type: 'error', code: 'invalid_spec', message: expect.any(String) }]);
  });

  it.each([
    ['a host that refuses connections', async (spec: JobSpec) => void (spec.data.training_file.url = `http://127.0.0.1:${await closedPort()}/train.jsonl?X-Amz-Signature=x`)],
    ['an object that is not there', async (spec: JobSpec) => void (spec.data.training_file.url = await presignGet('datasets/never-uploaded.jsonl'))],
    ['bytes that do not match the sha256', async (spec: JobSpec) => void (spec.data.training_file.sha256 = '0'.repeat(64))],
  ])('unreachable data (%s): data_unreachable, exit 4', async (_name, breakIt) => {
    const spec = await specFor('unreachable', makeTicketDataset({ n: 20, seed: 3 }));
    await breakIt(spec);
    const run = await runTrainer(profile, spec);
    expect(run.exitCode).toBe(TRAINER_EXIT.data_unreachable);
    expectWellFormed(run, spec);
    expect(run.events.at(-1)).toMatchObject({ type: 'error', code: 'data_unreachable', message: expect.stringContaining('training file') });
    expect(run.events.some((e) => e.type === 'metrics' || e.type === 'artifact')).toBe(false);
  });

  it('an invalid row: invalid_data naming the line, exit 3', async () => {
    const lines = makeTicketDataset({ n: 10, seed: 2 }).trim().split('\n');
    lines[2] = JSON.stringify({ messages: [{ role: 'robot', content: 'My parcel never came' }, { role: 'assistant', content: 'shipping' }] });
    const spec = await specFor('bad-row', `${lines.join('\n')}\n`);
    const run = await runTrainer(profile, spec);
    expect(run.exitCode).toBe(TRAINER_EXIT.invalid_data);
    expectWellFormed(run, spec);
    expect(run.events.at(-1)).toMatchObject({ type: 'error', code: 'invalid_data', line: 3, message: expect.stringContaining('line 3') });
  });

  it('an upload the object store refuses: upload_failed, exit 5, no artifact', async () => {
    const spec = await specFor('bad-upload', makeTicketDataset({ n: 20, seed: 3 }));
    spec.output.fields.Policy = Buffer.from('{"conditions":[]}').toString('base64'); // breaks the signature
    spec.output.url = `${endpoint}/no-such-bucket`;
    const run = await runTrainer(profile, spec);
    expect(run.exitCode).toBe(TRAINER_EXIT.upload_failed);
    expectWellFormed(run, spec);
    // Which file fails first is the trainer's business (tiny-lora: adapter_config.json; transformers: a checkpoint).
    expect(run.events.at(-1)).toMatchObject({ type: 'error', code: 'upload_failed', message: expect.stringMatching(/upload/) });
    if (profile.firstUpload) expect(run.events.at(-1)).toHaveProperty('message', expect.stringContaining(profile.firstUpload));
    expect(run.events.some((e) => e.type === 'artifact')).toBe(false);
  });

  describe('SIGTERM mid-run, then resume', () => {
    // The same spec (seed, data, hyperparameters) for the stopped, the resumed and the uninterrupted run.
    const data = makeTicketDataset({ n: 600, seed: 4 });
    let stopped: { spec: JobSpec; checkpoint: Extract<TrainerEvent, { type: 'checkpoint' }> } | undefined;

    it('saves a checkpoint of the current step, says cancelled and exits 143 within the grace period', async () => {
      const spec = await specFor('sigterm', data, { hp: profile.long });
      let stopAsked = 0;
      const run = await runTrainer(profile, spec, (event, container) => {
        if (event.type === 'metrics' && stopAsked === 0) {
          stopAsked = Date.now();
          void container.stop({ t: GRACE_SECONDS });
        }
      });
      const tookMs = Date.now() - stopAsked;
      expect(stopAsked).toBeGreaterThan(0);
      expect(run.exitCode).toBe(TRAINER_EXIT.cancelled);
      expectWellFormed(run, spec);
      expect(tookMs).toBeLessThan(GRACE_SECONDS * 1000 - 2000); // exited by itself, not killed at the deadline
      expect(run.events.at(-1)).toMatchObject({ type: 'error', code: 'cancelled' });
      expect(run.events.some((e) => e.type === 'artifact')).toBe(false);

      const [checkpoint, ...more] = checkpointsOf(run);
      expect(more).toEqual([]);
      expect(run.events.at(-2)).toBe(checkpoint);
      const lastMetrics = metricsOf(run).at(-1)!;
      expect(checkpoint.step).toBeGreaterThanOrEqual(lastMetrics.step);
      expect(checkpoint.step).toBeLessThan(lastMetrics.total_steps);
      expect(checkpoint.key_prefix).toBe(`${spec.output.key_prefix}checkpoint-${checkpoint.step}/`);
      await expectUploaded(checkpoint.key_prefix, checkpoint.files);
      stopped = { spec, checkpoint };
    });

    it('resume_from that checkpoint continues after its step and finishes the adapter', async () => {
      expect(stopped).toBeDefined(); // set by the SIGTERM test above
      const { spec: first, checkpoint } = stopped!;
      const resume_from = {
        step: checkpoint.step,
        files: await Promise.all(checkpoint.files.map(async (f) => ({ ...f, url: await presignGet(checkpoint.key_prefix + f.name) }))),
      };
      const spec: JobSpec = { ...first, attempt: 2, output: await outputFor('artifacts/sigterm/attempt-2/'), resume_from };
      const run = await runTrainer(profile, spec);
      expect(run.exitCode).toBe(TRAINER_EXIT.ok);
      expectWellFormed(run, spec);
      const metrics = metricsOf(run);
      expect(metrics[0].step).toBeGreaterThan(checkpoint.step);
      expect(metrics.at(-1)!.step).toBe(metrics.at(-1)!.total_steps);
      const artifact = run.events.find((e): e is Extract<TrainerEvent, { type: 'artifact' }> => e.type === 'artifact')!;
      await expectUploaded(artifact.key_prefix, artifact.files);

      if (profile.deterministic) {
        // The uninterrupted run of the same spec ends with the same bytes.
        const whole = await runTrainer(profile, { ...first, attempt: 3, output: await outputFor('artifacts/sigterm/attempt-3/') });
        expect(whole.exitCode).toBe(TRAINER_EXIT.ok);
        const wholeArtifact = whole.events.find((e): e is Extract<TrainerEvent, { type: 'artifact' }> => e.type === 'artifact')!;
        expect(artifact.files).toEqual(wholeArtifact.files);
        expect(artifact.trained_tokens).toBe(wholeArtifact.trained_tokens);
      }
    });

    it('a checkpoint whose files do not match resume_from is data_unreachable, exit 4', async () => {
      expect(stopped).toBeDefined();
      const { spec: first, checkpoint } = stopped!;
      const files = await Promise.all(checkpoint.files.map(async (f) => ({ ...f, url: await presignGet(checkpoint.key_prefix + f.name) })));
      files[0] = { ...files[0], sha256: 'f'.repeat(64) };
      const spec: JobSpec = { ...first, attempt: 4, output: await outputFor('artifacts/sigterm/attempt-4/'), resume_from: { step: checkpoint.step, files } };
      const run = await runTrainer(profile, spec);
      expect(run.exitCode).toBe(TRAINER_EXIT.data_unreachable);
      expectWellFormed(run, spec);
      expect(run.events.at(-1)).toMatchObject({ type: 'error', code: 'data_unreachable', message: expect.stringContaining(files[0].name) });
    });
  });
});
