import { Config } from '../../src/config/config';
import { Logger } from '@nestjs/common';
import { Job, UnrecoverableError } from 'bullmq';
import { DomainError } from '../../src/common/domain-error';
import { userFacingMessage } from '../../src/common/user-facing-error';
import { PrismaService } from '../../src/db/prisma.service';
import { EvalRunner } from '../../src/evals/eval-runner';
import { EvalsProcessor } from '../../src/evals/evals.processor';
import { EvalsQueue } from '../../src/evals/evals.queue';
import { Prisma } from '../../src/generated/prisma/client';
import { JobRunner } from '../../src/training/job-runner';
import { JobState } from '../../src/training/job-state';
import { TrainingProcessor } from '../../src/training/training.processor';

/** What Prisma throws when PostgreSQL restarts under a query (the case the review found in a user-facing event). */
const driverError = () =>
  new Prisma.PrismaClientKnownRequestError('Invalid `prisma.$executeRaw()` invocation:\n\nRaw query failed. Code: `57P03`. Message: `the database system is starting up`', {
    code: 'P2010',
    clientVersion: '7.0.0',
  });

describe('errors shown to users', () => {
  const logger = new Logger('test');
  let logged: unknown[][];
  beforeEach(() => {
    logged = [];
    jest.spyOn(logger, 'error').mockImplementation((...args: unknown[]) => void logged.push(args));
  });

  it('a driver or ORM error becomes a sentence with an error id; the detail goes to the log under that id', () => {
    const message = userFacingMessage(driverError(), logger, { runId: 'evalrun-1' });
    expect(message).toMatch(/^An internal error stopped this \(error id err_[A-Za-z0-9]+\)/);
    expect(message).not.toMatch(/prisma|57P03|invocation|database/i);
    const errorId = /error id (err_[A-Za-z0-9]+)/.exec(message)![1];
    expect(logged).toHaveLength(1);
    expect(logged[0][0]).toMatchObject({ errorId, runId: 'evalrun-1', err: expect.any(Prisma.PrismaClientKnownRequestError) });
  });

  it('our own errors keep their words, also when wrapped', () => {
    const own = new DomainError('invalid_state', "The judge target of suite 's' no longer exists");
    expect(userFacingMessage(own, logger, {})).toBe(own.message);
    expect(userFacingMessage(Object.assign(new UnrecoverableError(own.message), { cause: own }), logger, {})).toBe(own.message);
    expect(logged).toHaveLength(0);
  });

  it('an eval run whose task fails for good on a driver error records the sentence, not the driver text', async () => {
    const gaveUp: [string, string][] = [];
    const runner = { giveUp: async (runId: string, message: string) => void gaveUp.push([runId, message]) };
    const processor = new EvalsProcessor(runner as unknown as EvalRunner, {} as EvalsQueue, {} as PrismaService, Config.fromEnv({ DATABASE_URL: 'postgresql://x@127.0.0.1/x', REDIS_URL: 'redis://127.0.0.1', S3_BUCKET: 'bucket', LORAPLANE_MODE: 'dev' }));
    const job = { name: 'run.execute', data: { runId: 'evalrun-9' }, attemptsMade: 5, opts: { attempts: 5 } } as unknown as Job;
    await processor.onFailed(job, driverError());
    expect(gaveUp).toHaveLength(1);
    expect(gaveUp[0][0]).toBe('evalrun-9');
    expect(gaveUp[0][1]).toMatch(/error id err_/);
    expect(gaveUp[0][1]).not.toMatch(/prisma|57P03/i);
  });

  it("a job's retry event and its failure after the last attempt carry a sentence and an error id, not the driver text", async () => {
    const shown: string[] = [];
    const state = {
      event: async (_job: unknown, e: { message: string }) => void shown.push(e.message),
      transition: async (_id: string, _from: unknown, _to: string, e: { message: string }, data: { error: { message: string } }) => void shown.push(e.message, data.error.message),
    };
    const prisma = { fineTuningJob: { findUnique: async () => ({ id: 'ftjob-9', projectId: 'proj_1' }) } };
    const config = Config.fromEnv({ DATABASE_URL: 'postgresql://x@127.0.0.1/x', REDIS_URL: 'redis://127.0.0.1', S3_BUCKET: 'bucket', LORAPLANE_MODE: 'dev' });
    // Only the database and the job's state are touched on these paths; nothing else is reached.
    const unused = null as never;
    const runner = new JobRunner(prisma as unknown as PrismaService, unused, unused, state as unknown as JobState, unused, unused, unused, config, unused);
    const processor = new TrainingProcessor(runner, unused, unused, unused, config);
    const task = (attemptsMade: number) => ({ name: 'job.run', data: { jobId: 'ftjob-9', attempt: 1 }, attemptsMade, opts: { attempts: 3 } }) as unknown as Job;
    await processor.onFailed(task(1), driverError());
    await processor.onFailed(task(3), driverError());
    expect(shown).toEqual([
      expect.stringMatching(/^loraplane hit an infrastructure problem \(the database was unavailable; error id err_\w+\) and will retry \(1 of 3 attempts used\)$/),
      expect.stringMatching(/^The job failed: loraplane could not run the job \(the database was unavailable; error id err_\w+\)$/),
      expect.stringMatching(/^loraplane could not run the job \(the database was unavailable; error id err_\w+\)$/),
    ]);
    for (const message of shown) expect(message).not.toMatch(/prisma|57P03|invocation|starting up/i);
  });
});
