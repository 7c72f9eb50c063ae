import { Config } from '../../src/config/config';
import { placementGpus, readPlacement } from '../../src/training/placement/job-placement';
import { DockerRuntime } from '../../src/training/runtime/docker-runtime';
import { TrainingRuntimes } from '../../src/training/runtime/training-runtimes';
import { presignSecondsForTraining } from '../../src/training/job-runner';
import { PrismaService } from '../../src/db/prisma.service';

describe('job placement and the runtime resolver', () => {
  it('reads a placement stored before the runtime field existed as a Docker placement', () => {
    const old = { host_id: 'gpuhost-1', host_name: 'gpu-1', gpu_indices: [0, 2], usd_per_gpu_hour: 2.5 };
    expect(readPlacement(old)).toEqual({ runtime: 'docker', ...old });
    expect(placementGpus(readPlacement(old)!)).toEqual({ count: 2, usdPerGpuHour: 2.5 });
    expect(readPlacement(null)).toBeNull();
  });

  it('refuses a stored placement of no known shape instead of guessing', () => {
    expect(() => readPlacement({ runtime: 'mainframe' })).toThrow();
    expect(() => readPlacement({ host_id: 'h', gpu_indices: 'all' })).toThrow();
  });

  it('resolves an unplaced job to the local engine and a placed one to its host engine, one client per engine', async () => {
    const config = Config.fromEnv({ DATABASE_URL: 'postgresql://x@h/db', REDIS_URL: 'redis://h', S3_BUCKET: 'bucket', SECRETS_KEY: '0'.repeat(64), DOCKER_SOCKET: '/run/test-docker.sock' });
    const host = { id: 'gpuhost-1', name: 'gpu-1', engineUrl: 'tcp://gpu-1.internal:2375', tls: null };
    const prisma = { gpuHost: { findUnique: jest.fn(async () => host) } } as unknown as PrismaService;
    const runtimes = new TrainingRuntimes(config, prisma);
    const local = await runtimes.forJob({ placement: null });
    expect(local).toBeInstanceOf(DockerRuntime);
    expect(local.name).toBe('docker (local)');
    const placed = { runtime: 'docker', host_id: host.id, host_name: host.name, gpu_indices: [1], usd_per_gpu_hour: 1 };
    const remote = await runtimes.forJob({ placement: placed });
    expect(remote.name).toBe('docker (gpu-1)');
    expect(await runtimes.forJob({ placement: placed })).toBe(remote);
    expect(remote).not.toBe(local);
  });
});

describe('presigned URLs of a training job', () => {
  const base = { DATABASE_URL: 'postgresql://x@h/db', REDIS_URL: 'redis://h', S3_BUCKET: 'bucket', SECRETS_KEY: '0'.repeat(64) };

  it('outlive the wall-clock limit plus the stop grace (the default 24 h limit gets 25 h URLs, not the 6 h default TTL)', () => {
    const config = Config.fromEnv(base);
    expect(config.env.PRESIGN_TTL_SECONDS).toBe(6 * 3600);
    expect(presignSecondsForTraining(config)).toBe(24 * 3600 + 30 + 3600);
    expect(presignSecondsForTraining(config)).toBeGreaterThan(config.env.TRAINING_TIMEOUT_SECONDS + config.env.TRAINING_STOP_GRACE_SECONDS);
  });

  it("refuses a limit that S3's 7-day cap on presigned URLs could not cover", () => {
    const week = 7 * 24 * 3600;
    expect(presignSecondsForTraining(Config.fromEnv({ ...base, TRAINING_TIMEOUT_SECONDS: String(week - 3600 - 30) }))).toBe(week);
    expect(() => Config.fromEnv({ ...base, TRAINING_TIMEOUT_SECONDS: String(week - 3600) })).toThrow(/TRAINING_TIMEOUT_SECONDS: at most 601170.*7 days/);
  });
});
