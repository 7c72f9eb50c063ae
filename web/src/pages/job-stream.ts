import { useEffect, useRef, useState } from 'react';
import { api, call, readSse } from '../api/client';
import type { JobEvent } from '../api/views';

export interface Curve {
  step: number[];
  train: (number | null)[];
  valid: (number | null)[];
  lr: (number | null)[];
  tps: (number | null)[];
}
const emptyCurve = (): Curve => ({ step: [], train: [], valid: [], lr: [], tps: [] });
const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * The job's metric history in one call (columns; a page holds up to 100,000 points, so a bigger job takes a few),
 * and where it ends in the event sequence: the live stream resumes exactly there.
 */
async function loadHistory(id: string): Promise<{ curve: Curve; lastEventId: string | null }> {
  let curve = emptyCurve();
  for (let after: string | undefined; ; ) {
    const h = await call(api.GET('/v1/fine_tuning/jobs/{fine_tuning_job_id}/metrics', { params: { path: { fine_tuning_job_id: id }, query: { after } } }));
    const page: Curve = { step: h.step, train: h.train_loss, valid: h.valid_loss, lr: h.learning_rate, tps: h.tokens_per_second };
    curve = curve.step.length ? { step: [...curve.step, ...page.step], train: [...curve.train, ...page.train], valid: [...curve.valid, ...page.valid], lr: [...curve.lr, ...page.lr], tps: [...curve.tps, ...page.tps] } : page;
    if (!h.has_more || !h.last_event_id) return { curve, lastEventId: h.last_event_id };
    after = h.last_event_id;
  }
}

/** The timeline's messages so far (the newest 100), oldest first. */
async function loadMessages(id: string): Promise<JobEvent[]> {
  const page = await call(api.GET('/v1/fine_tuning/jobs/{fine_tuning_job_id}/events', { params: { path: { fine_tuning_job_id: id }, query: { type: 'message', limit: 100 } } }));
  return page.data.reverse();
}

function appendMetrics(acc: Curve, metrics: JobEvent[]): Curve {
  const next = { step: [...acc.step], train: [...acc.train], valid: [...acc.valid], lr: [...acc.lr], tps: [...acc.tps] };
  for (const { data: d } of metrics) {
    const step = n(d?.step);
    if (!d || step === null) continue; // as in the history: a point without a step has no place on the x axis
    next.step.push(step);
    next.train.push(n(d.train_loss));
    next.valid.push(n(d.valid_loss));
    next.lr.push(n(d.learning_rate));
    next.tps.push(n(d.tokens_per_second));
  }
  return next;
}

/**
 * The curves and the timeline of a job: its history in bulk, then the server-sent event stream from where that
 * history ends (Last-Event-ID), so each later point arrives once. Live events are batched every 100 ms, so a burst
 * is one redraw. Messages the list and the stream both hold (written between the two reads) are kept once, by id.
 */
export function useJobStream(id: string, onDone: () => void) {
  const [curve, setCurve] = useState<Curve>(emptyCurve);
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [error, setError] = useState<Error | null>(null);
  const done = useRef(onDone);
  done.current = onDone;
  useEffect(() => {
    const abort = new AbortController();
    const pending: JobEvent[] = [];
    let acc = emptyCurve();
    let timer = 0;
    const flush = () => {
      timer = 0;
      const batch = pending.splice(0);
      const metrics = batch.filter((e) => e.type === 'metrics');
      if (metrics.length) setCurve((acc = appendMetrics(acc, metrics)));
      const others = batch.filter((e) => e.type !== 'metrics');
      if (others.length) setEvents((prev) => mergeById(prev, others));
    };
    const fail = (err: Error) => abort.signal.aborted || setError(err);
    const follow = async () => {
      // Both requests at once, but the chart waits for its history only: the timeline's query is the slower one
      // on a long job (its few messages sit behind every metrics row). Older messages go first, whenever they come.
      loadMessages(id).then((m) => abort.signal.aborted || setEvents((prev) => mergeById(m, prev)), fail);
      const history = await loadHistory(id);
      if (abort.signal.aborted) return;
      setCurve((acc = history.curve));
      const headers = history.lastEventId ? { 'last-event-id': history.lastEventId } : undefined;
      await readSse(
        `/v1/fine_tuning/jobs/${encodeURIComponent(id)}/events/stream`,
        { headers },
        (m) => {
          if (m.event === 'done') return done.current();
          if (m.event !== 'event') return;
          pending.push(JSON.parse(m.data) as JobEvent);
          // A timer, not requestAnimationFrame: frames stop in a hidden tab, and the stream must not stall there.
          timer ||= window.setTimeout(flush, 100);
        },
        abort.signal,
      );
      flush();
    };
    follow().catch(fail);
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [id]);
  return { curve, events, error };
}

function mergeById(a: JobEvent[], b: JobEvent[]): JobEvent[] {
  const seen = new Set(a.map((e) => e.id));
  return [...a, ...b.filter((e) => !seen.has(e.id))];
}
