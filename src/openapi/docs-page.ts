/** A self-contained HTML reference rendered from the OpenAPI document: works offline, no CDN, no script. */
const esc = (s: unknown) => String(s ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export function renderDocsPage(doc: Record<string, unknown>): string {
  const info = doc.info as { title: string; version: string; description: string };
  const paths = doc.paths as Record<string, Record<string, { summary?: string; tags?: string[]; parameters?: { name: string; in: string; required: boolean }[]; requestBody?: { content: Record<string, { schema: unknown }> }; security?: unknown[] }>>;
  const byTag = new Map<string, string[]>();
  for (const [path, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = op.tags?.[0] ?? 'other';
      const params = (op.parameters ?? []).map((p) => `<code>${esc(p.name)}</code> <small>${esc(p.in)}${p.required ? ', required' : ''}</small>`).join(', ');
      const body = op.requestBody ? Object.entries(op.requestBody.content).map(([type, c]) => `<details><summary>${esc(type)} body</summary><pre>${esc(JSON.stringify(c.schema, null, 2))}</pre></details>`).join('') : '';
      const auth = op.security && op.security.length === 0 ? ' <small>(no key)</small>' : '';
      const html = `<section><h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code>${auth}</h3><p>${esc(op.summary)}</p>${params ? `<p>Parameters: ${params}</p>` : ''}${body}</section>`;
      byTag.set(tag, [...(byTag.get(tag) ?? []), html]);
    }
  }
  const sections = [...byTag.entries()].map(([tag, items]) => `<h2 id="${esc(tag)}">${esc(tag)}</h2>${items.join('\n')}`).join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(info.title)} API</title><style>
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2em;text-transform:capitalize}section{margin:1em 0;padding:.5em 1em;border:1px solid #eee;border-radius:6px}
h3{margin:.2em 0;font-size:1em}.m{display:inline-block;min-width:4em;font-weight:700}.get{color:#1a7f37}.post{color:#0550ae}.delete{color:#cf222e}
pre{background:#f6f8fa;padding:.8em;overflow:auto;font-size:12px}code{font-size:.95em}</style></head><body>
<h1>${esc(info.title)} <small>${esc(info.version)}</small></h1><p>${esc(info.description)}</p>
<p>Authenticate with <code>Authorization: Bearer &lt;key&gt;</code>. Errors use OpenAI's envelope <code>{"error":{"message","type","param","code"}}</code>. Machine-readable: <a href="/openapi.json">/openapi.json</a>.</p>
${sections}</body></html>`;
}
