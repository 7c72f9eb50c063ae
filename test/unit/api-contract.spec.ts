import { apiDocument, contractViolations, routeTemplate } from '../support/api-contract';

/** The e2e specs' contract check (test/support/api-contract.ts) itself: which route it picks and what it rejects. */
describe('API contract check', () => {
  const deleted = { object: 'eval.target.deleted', id: 'evaltgt-1', deleted: true };

  it('compiles every JSON response schema the document gives', () => {
    const routes = Object.entries(apiDocument().paths).flatMap(([path, ops]) =>
      Object.entries(ops).filter(([, op]) => op.responses?.['200']?.content?.['application/json']?.schema).map(([method]) => [method, path]),
    );
    expect(routes.length).toBeGreaterThan(60);
    // A concrete path for each template; compiling happens on the first check.
    for (const [method, path] of routes) expect(() => contractViolations(method, path.replace(/\{[^}]+\}/g, 'x'), {})).not.toThrow();
  });

  it('gives every JSON route of the app a response schema: only the text, byte and event-stream routes go without', () => {
    const without = Object.entries(apiDocument().paths).flatMap(([path, ops]) =>
      Object.entries(ops).filter(([, op]) => !Object.values(op.responses?.['200']?.content ?? {}).some((c) => c.schema)).map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    expect(without.sort()).toEqual(
      ['GET /docs', 'GET /healthz', 'GET /metrics', 'GET /openapi.json', 'GET /readyz', 'GET /v1/files/{file_id}/content', 'GET /v1/fine_tuning/jobs/{fine_tuning_job_id}/events/stream'].sort(),
    );
  });

  it('picks the route the router would: a literal segment wins over a parameter', () => {
    expect(routeTemplate('POST', '/v1/evals/suites/import')).toBe('/v1/evals/suites/import');
    expect(routeTemplate('GET', '/v1/evals/suites/import')).toBe('/v1/evals/suites/{suite_id}');
    expect(routeTemplate('GET', '/v1/serving/pools/p1/aliases/tickets/history')).toBe('/v1/serving/pools/{pool}/aliases/{adapter_name}/history');
    expect(routeTemplate('GET', '/v1/nothing/here')).toBeUndefined();
  });

  it('accepts an answer that matches, with or without a query string', () => {
    expect(contractViolations('DELETE', '/v1/evals/targets/evaltgt-1', deleted)).toEqual([]);
    expect(contractViolations('DELETE', '/v1/evals/targets/evaltgt-1?x=1', deleted)).toEqual([]);
  });

  it('rejects an undocumented field, a missing one and a wrong type, naming each', () => {
    expect(contractViolations('DELETE', '/v1/evals/targets/t', { ...deleted, extra: 1 })).toEqual([expect.stringMatching(/must NOT have additional properties.*extra/)]);
    const { id: _id, ...missing } = deleted;
    expect(contractViolations('DELETE', '/v1/evals/targets/t', missing)).toEqual([expect.stringMatching(/must have required property 'id'/)]);
    expect(contractViolations('DELETE', '/v1/evals/targets/t', { ...deleted, deleted: 'yes' })).toEqual(expect.arrayContaining([expect.stringMatching(/\$\.deleted must be boolean/)]));
  });

  it('refuses a secret in the answers that must not show one; only create and rotate_secret carry the webhook secret', () => {
    const endpoint = { object: 'webhook.endpoint', id: 'ep_1', url: 'https://h/x', event_types: [], description: null, enabled: true, disabled_reason: null, created_at: 1 };
    const secret = /must NOT have additional properties.*secret/;
    expect(contractViolations('GET', '/v1/webhooks/endpoints/ep_1', endpoint)).toEqual([]);
    expect(contractViolations('GET', '/v1/webhooks/endpoints/ep_1', { ...endpoint, secret: 'whsec_x' })).toEqual([expect.stringMatching(secret)]);
    expect(contractViolations('GET', '/v1/webhooks/endpoints', { object: 'list', data: [{ ...endpoint, secret: 'whsec_x' }], has_more: false })).toEqual([expect.stringMatching(secret)]);
    expect(contractViolations('POST', '/v1/webhooks/endpoints', { ...endpoint, secret: 'whsec_x' })).toEqual([]);
    expect(contractViolations('POST', '/v1/webhooks/endpoints/ep_1/rotate_secret', endpoint)).toEqual([expect.stringMatching(/required property 'secret'/)]);
    const provider = { object: 'provider_model', id: 'provmodel-1', name: 'o4-mini', base_url: 'https://api.openai.com/v1', model: 'o4-mini', has_api_key: true, created_at: 1 };
    expect(contractViolations('POST', '/v1/provider_models', provider)).toEqual([]);
    expect(contractViolations('POST', '/v1/provider_models', { ...provider, api_key: 'sk-x' })).toEqual([expect.stringMatching(/additional properties.*api_key/)]);
  });

  it('checks nothing where the route documents no JSON schema', () => {
    expect(contractViolations('POST', '/v1/chat/completions', { anything: true })).toBeNull();
    expect(contractViolations('GET', '/v1/files/file-1/content', 'bytes')).toBeNull();
  });
});
