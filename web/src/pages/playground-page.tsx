import { FormEvent, useRef, useState } from 'react';
import { api, call, readSse } from '../api/client';
import { loadPools } from '../api/pools';
import { Card, ErrorBox, num, Page, useLoad } from '../components/ui';

interface Answer {
  model: string;
  text: string;
  ttftMs: number | null;
  totalMs: number | null;
  usage: { prompt_tokens?: number; completion_tokens?: number } | null;
  error: Error | null;
}

/** Names the gateway can resolve: base and fine-tuned models, and every alias and deployed version on a pool. */
async function callableNames(): Promise<string[]> {
  const [models, pools] = await Promise.all([call(api.GET('/v1/models')), loadPools()]);
  return [...new Set([...models.data.map((m) => m.id), ...pools.flatMap((p) => [...p.aliases.map((a) => a.adapter), ...p.deployments.map((d) => d.served_name)])])];
}

/**
 * One prompt to up to three models side by side through the gateway's OpenAI-compatible route, streamed, with
 * time to first token, total latency and the usage block each answer reported. Output is rendered as text.
 */
export function PlaygroundPage() {
  const names = useLoad(callableNames, []);
  const [models, setModels] = useState(['', '', '']);
  const [prompt, setPrompt] = useState('');
  const [answers, setAnswers] = useState<Answer[]>([]);
  const abort = useRef<AbortController | null>(null);
  const send = (e: FormEvent) => {
    e.preventDefault();
    abort.current?.abort();
    const controller = (abort.current = new AbortController());
    const chosen = models.filter(Boolean);
    setAnswers(chosen.map((model) => ({ model, text: '', ttftMs: null, totalMs: null, usage: null, error: null })));
    chosen.forEach((model, i) => {
      const t0 = performance.now();
      const update = (f: (a: Answer) => Answer) => setAnswers((prev) => prev.map((a, j) => (j === i ? f(a) : a)));
      readSse(
        '/v1/chat/completions',
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model, messages: [{ role: 'user', content: prompt }], stream: true, stream_options: { include_usage: true } }),
        },
        (m) => {
          if (m.data === '[DONE]') return;
          const chunk = JSON.parse(m.data) as { choices?: { delta?: { content?: string } }[]; usage?: Answer['usage'] };
          const piece = chunk.choices?.[0]?.delta?.content ?? '';
          update((a) => ({ ...a, text: a.text + piece, ttftMs: a.ttftMs ?? (piece ? performance.now() - t0 : null), usage: chunk.usage ?? a.usage }));
        },
        controller.signal,
      ).then(
        () => update((a) => ({ ...a, totalMs: performance.now() - t0 })),
        (error: Error) => update((a) => ({ ...a, error })),
      );
    });
  };
  return (
    <Page title="Playground">
      <ErrorBox error={names.error} />
      <form className="stack playground-form" onSubmit={send}>
        <div className="filters">
          {models.map((m, i) => (
            <label key={i}>
              Model {i + 1}
              {i ? ' (optional)' : ''}
              <input list="callable-models" value={m} required={i === 0} onChange={(e) => setModels(models.map((x, j) => (j === i ? e.target.value : x)))} />
            </label>
          ))}
          <datalist id="callable-models">
            {(names.data ?? []).map((n) => (
              <option key={n} value={n} />
            ))}
          </datalist>
        </div>
        <label>
          Prompt
          <textarea rows={4} value={prompt} required onChange={(e) => setPrompt(e.target.value)} />
        </label>
        <button type="submit">Send</button>
      </form>
      <div className="columns">
        {answers.map((a) => (
          <Card key={a.model} title={a.model}>
            {a.error && !a.text ? null : (
              <pre className="answer" aria-live="polite">
                {a.text}
              </pre>
            )}
            <ErrorBox error={a.error} />
            <p className="muted small">
              {/* A failed answer has no total: '…' would read as still waiting. */}
              first token {a.ttftMs === null ? '—' : `${Math.round(a.ttftMs)} ms`} · total {a.totalMs !== null ? `${Math.round(a.totalMs)} ms` : a.error ? '—' : '…'} · tokens in{' '}
              {num(a.usage?.prompt_tokens)} / out {num(a.usage?.completion_tokens)}
            </p>
          </Card>
        ))}
      </div>
    </Page>
  );
}
