import { Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { DomainError } from '../common/domain-error';
import { Config } from '../config/config';
import { BatchedWriter } from '../db/batched-writer';
import { PrismaService } from '../db/prisma.service';
import { WebhookOutbox } from '../webhooks/webhook-outbox';
import { EvalTarget } from '../generated/prisma/client';
import { ChatAnswer, ChatCallError, ChatEndpoint, ChatMessage, ChatTargetClient } from './chat-target-client';
import { EvalItem } from './eval-item';
import { retryDelayMs } from './retry-policy';
import { buildJudgePrompt, createScorer, JudgeReplyError, parseJudgeReply, parseScorerConfig, ScoreResult } from './scorers';
import { SuiteItems } from './suite-items';
import { TargetEndpoints } from './target-endpoints';

/** The worker is stopping: the run's task goes back to the queue; what was recorded stays, the rest is redone. */
export class RunInterrupted extends Error {
  constructor() {
    super('the worker is shutting down');
    this.name = 'RunInterrupted';
  }
}

/** Results are written in batches so a slot never waits for Postgres between two calls. */
const FLUSH_ROWS = 500;
const FLUSH_MS = 250;

/**
 * Result rows go through a BatchedWriter. A row not yet flushed when the process dies is simply not there: its item
 * is redone on resume, and the unique (run, target, item) key makes a second write of a row that did land a no-op,
 * so an item is never lost nor counted twice.
 */
function resultWriter(prisma: PrismaService): BatchedWriter<ResultRow> {
  return new BatchedWriter((rows) => insertResults(prisma, rows), { maxRows: FLUSH_ROWS, flushMs: FLUSH_MS });
}

/**
 * One statement per batch, its columns as arrays: Prisma's createMany builds and binds one parameter per field per
 * row, which costs more CPU than the calls being measured on a small machine; unnest() binds fifteen arrays.
 */
async function insertResults(prisma: PrismaService, rows: ResultRow[]): Promise<void> {
  const col = <K extends keyof ResultRow>(k: K) => rows.map((r) => r[k] ?? null);
  await prisma.$executeRaw`
    INSERT INTO "EvalResult" ("id", "runId", "targetId", "itemIndex", "correct", "output", "detail", "error", "sentAt", "latencyMs", "ttftMs",
      "inputTokens", "cachedInputTokens", "outputTokens", "reasoningTokens", "attempts")
    SELECT gen_random_uuid()::text, * FROM unnest(
      ${col('runId')}::text[], ${col('targetId')}::text[], ${col('itemIndex')}::int[], ${col('correct')}::boolean[], ${col('output')}::text[],
      ${col('detail')}::text[], ${col('error')}::text[], ${col('sentAt')}::timestamp(3)[], ${col('latencyMs')}::float8[], ${col('ttftMs')}::float8[],
      ${col('inputTokens')}::int[], ${col('cachedInputTokens')}::int[], ${col('outputTokens')}::int[], ${col('reasoningTokens')}::int[], ${col('attempts')}::int[])
    ON CONFLICT ("runId", "targetId", "itemIndex") DO NOTHING`;
}

interface ResultRow {
  runId: string;
  targetId: string;
  itemIndex: number;
  correct: boolean;
  attempts: number;
  output?: string | null;
  detail?: string | null;
  error?: string | null;
  sentAt?: Date | null;
  latencyMs?: number | null;
  ttftMs?: number | null;
  inputTokens?: number | null;
  cachedInputTokens?: number | null;
  outputTokens?: number | null;
  reasoningTokens?: number | null;
}

interface Judge {
  call(messages: ChatMessage[], signal: AbortSignal): Promise<{ answer: ChatAnswer; attempts: number }>;
}

/**
 * Executes an eval run: the same items go to every target, each target with its own bounded concurrency; every
 * answer is scored and recorded once. Safe to run again at any point (after a restart, or by a second worker after a
 * lapsed lock): it only does the items that have no result yet.
 */
@Injectable()
export class EvalRunner {
  private readonly logger = new Logger(EvalRunner.name);

  constructor(
    private readonly prisma: PrismaService,
    private readonly client: ChatTargetClient,
    private readonly items: SuiteItems,
    private readonly endpoints: TargetEndpoints,
    private readonly config: Config,
    private readonly outbox: WebhookOutbox,
  ) {}

  async execute(runId: string, shutdown: AbortSignal): Promise<void> {
    const run = await this.prisma.evalRun.findUnique({ where: { id: runId }, include: { suite: true } });
    if (!run || !['queued', 'running'].includes(run.status)) return;
    await this.prisma.evalRun.updateMany({ where: { id: runId, status: 'queued' }, data: { status: 'running', startedAt: new Date() } });
    const items = await this.items.load(run.projectId, run.suite.datasetId);
    const config = parseScorerConfig(run.suite.scorer);
    const targets = await this.prisma.evalTarget.findMany({ where: { id: { in: run.targetIds }, projectId: run.projectId } });
    let score: (item: EvalItem, output: string, signal: AbortSignal) => Promise<ScoreResult & { error?: string }>;
    if (config.type === 'llm_judge') {
      const judgeTarget = await this.prisma.evalTarget.findFirst({ where: { id: run.suite.judgeTargetId ?? '', projectId: run.projectId } });
      if (!judgeTarget) throw new DomainError('invalid_state', `The judge target of suite '${run.suite.name}' no longer exists`);
      const judge = await this.judge(judgeTarget);
      score = async (item, output, s) => {
        const { answer } = await judge.call(buildJudgePrompt(item, output).messages, s);
        try {
          return parseJudgeReply(answer.content);
        } catch (err) {
          if (err instanceof JudgeReplyError) return { correct: false, detail: err.message, error: err.code };
          throw err;
        }
      };
    } else {
      const scorer = createScorer(config, { maxOutputChars: this.config.env.EVAL_SCORE_MAX_CHARS });
      score = async (item, output) => scorer.score(item, output);
    }
    // A cancel (another process sets the row to cancelled) is seen within a second and stops the calls.
    const cancelled = new AbortController();
    const watch = setInterval(() => {
      this.prisma.evalRun.findUnique({ where: { id: runId }, select: { status: true } }).then(
        (r) => r?.status === 'running' || cancelled.abort(),
        (err: unknown) => this.logger.warn({ err, runId }, 'could not look at the run status; will look again'),
      );
    }, 1000);
    watch.unref();
    const signal = AbortSignal.any([shutdown, cancelled.signal]);
    const writer = resultWriter(this.prisma);
    try {
      await Promise.all(targets.map((t) => this.runTarget(runId, t, items, score, writer, signal)));
    } finally {
      clearInterval(watch);
      await writer.close();
    }
    if (shutdown.aborted) throw new RunInterrupted();
    if (cancelled.signal.aborted) return;
    const done = await this.prisma.evalResult.count({ where: { runId } });
    // A target deleted since the run was created leaves its share undone: the run ends with what it has.
    const expected = items.length * targets.length;
    if (done >= expected) {
      // The status change and its webhook event commit together (the outbox), or neither does.
      const settled = await this.prisma.$transaction(async (tx) => {
        const moved = await tx.evalRun.updateMany({ where: { id: runId, status: 'running' }, data: { status: 'succeeded', finishedAt: new Date() } });
        if (moved.count === 1) {
          await this.outbox.record(tx, run.projectId, 'eval.run.completed', { id: runId, suite_id: run.suiteId, status: 'succeeded', targets: targets.map((t) => t.name), results: done });
        }
        return moved.count === 1;
      });
      if (settled) await this.outbox.dispatchSoon();
    }
  }

  /** Settles a run whose task failed for good (its infrastructure kept failing). */
  async giveUp(runId: string, message: string): Promise<void> {
    await this.prisma.evalRun.updateMany({
      where: { id: runId, status: { in: ['queued', 'running'] } },
      data: { status: 'failed', finishedAt: new Date(), error: { code: 'internal_error', message } },
    });
  }

  private async runTarget(
    runId: string,
    target: EvalTarget,
    items: EvalItem[],
    score: (item: EvalItem, output: string, signal: AbortSignal) => Promise<ScoreResult & { error?: string }>,
    writer: BatchedWriter<ResultRow>,
    signal: AbortSignal,
  ): Promise<void> {
    const done = new Set((await this.prisma.evalResult.findMany({ where: { runId, targetId: target.id }, select: { itemIndex: true } })).map((r) => r.itemIndex));
    const pending = items.map((_, i) => i).filter((i) => !done.has(i));
    if (pending.length === 0) return;
    const pick = await this.endpoints.picker(target);
    let cursor = 0;
    const slot = async () => {
      while (!signal.aborted && cursor < pending.length) {
        const index = pending[cursor++];
        const item = items[index];
        const sentAt = new Date();
        const call = await this.callWithRetry(pick, messagesOf(item), signal);
        if (signal.aborted) return; // an interrupted call records nothing; the item is redone on resume
        const base = { runId, targetId: target.id, itemIndex: index, attempts: call.attempts };
        if ('error' in call) {
          await writer.push({ ...base, correct: false, error: call.error });
          continue;
        }
        const a = call.answer;
        let verdict: ScoreResult & { error?: string };
        try {
          verdict = await score(item, a.content, signal);
        } catch (err) {
          if (signal.aborted) return;
          // The item or the scorer config is at fault (a pattern that backtracks, a judge that keeps failing).
          if (!(err instanceof DomainError) && !(err instanceof ChatCallError)) throw err;
          verdict = { correct: false, error: err.message };
        }
        await writer.push({
          ...base,
          correct: verdict.correct,
          detail: verdict.detail ?? null,
          error: verdict.error ?? null,
          output: a.content,
          sentAt: new Date(sentAt.getTime() + Math.max(0, call.startOffsetMs)),
          latencyMs: a.latencyMs,
          ttftMs: a.ttftMs,
          inputTokens: a.usage?.input ?? null,
          cachedInputTokens: a.usage?.cachedInput ?? null,
          outputTokens: a.usage?.output ?? null,
          reasoningTokens: a.usage?.reasoning ?? null,
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(target.concurrency, pending.length) }, slot));
  }

  /** 429/5xx/timeouts are tried again (Retry-After first, else backoff) up to EVAL_MAX_ATTEMPTS; others fail the item. */
  private async callWithRetry(pick: () => ChatEndpoint, messages: ChatMessage[], signal: AbortSignal): Promise<{ answer: ChatAnswer; attempts: number; startOffsetMs: number } | { error: string; attempts: number }> {
    const max = this.config.env.EVAL_MAX_ATTEMPTS;
    const t0 = performance.now();
    for (let attempt = 1; ; attempt++) {
      const startOffsetMs = performance.now() - t0;
      try {
        return { answer: await this.client.complete(pick(), messages, signal), attempts: attempt, startOffsetMs };
      } catch (err) {
        if (signal.aborted) return { error: 'interrupted', attempts: attempt };
        if (!(err instanceof ChatCallError)) throw err;
        if (!err.retryable || attempt >= max) return { error: err.message, attempts: attempt };
        const wait = retryDelayMs(attempt, this.config.env.EVAL_RETRY_BASE_MS, err.retryAfterMs);
        this.logger.debug({ status: err.status, attempt, wait }, 'target call failed; retrying');
        try {
          await sleep(wait, undefined, { signal });
        } catch {
          return { error: 'interrupted', attempts: attempt };
        }
      }
    }
  }

  private async judge(target: EvalTarget): Promise<Judge> {
    const pick = await this.endpoints.picker(target);
    return {
      call: async (messages, signal) => {
        const r = await this.callWithRetry(pick, messages, signal);
        if ('error' in r) throw new ChatCallError(`judge '${target.name}': ${r.error}`, null, false, null);
        return r;
      },
    };
  }
}

function messagesOf(item: EvalItem): ChatMessage[] {
  return typeof item.prompt === 'string' ? [{ role: 'user', content: item.prompt }] : item.prompt;
}
