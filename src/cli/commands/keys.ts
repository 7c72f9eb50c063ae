import { Command, num, str } from '../command';
import { table } from '../output';
import type { Body, Reply } from '../api-types';

/** The project's own API keys (what a CI pipeline needs to mint an application's restricted key). */
export const keyCommands: Command[] = [
  {
    name: 'keys',
    summary: "The project's API keys that still work (values are never shown again)",
    async run(ctx) {
      const page = await ctx.api.json<Reply<'/v1/api_keys'>>('GET', '/api_keys');
      const rows = page.data.map((k) => ({ ...k, scopes: k.scopes.join(',') }));
      return { json: page, text: table(rows, ['id', 'name', 'redacted_value', 'scopes']) };
    },
  },
  {
    name: 'keys create',
    summary: "A new key (--name; --scopes project | inference | read, comma-separated; default project); its value is printed once",
    options: { name: { type: 'string' }, scopes: { type: 'string' } },
    async run(ctx, _args, v) {
      // Sent as given: the API names a wrong scope (scopes[0]).
      const scopes = str(v.scopes)?.split(',').map((s) => s.trim()).filter(Boolean);
      const body = { ...(str(v.name) ? { name: str(v.name) } : {}), ...(scopes ? { scopes } : {}) } as Partial<Body<'/v1/api_keys'>>;
      const key = await ctx.api.json<Reply<'/v1/api_keys', 'post'>>('POST', '/api_keys', body);
      return { json: key, text: key.value };
    },
  },
  {
    name: 'keys revoke',
    args: '<key_id>',
    summary: 'Revoke a key of the project (a key may not revoke one that can do more than it can)',
    async run(ctx, [id]) {
      const res = await ctx.api.json<Reply<'/v1/api_keys/{key_id}', 'delete'>>('DELETE', `/api_keys/${encodeURIComponent(id ?? '')}`);
      return { json: res, text: `key ${res.id} revoked` };
    },
  },
  {
    name: 'keys limits',
    args: '<key_id>',
    summary: "Set a key's gateway limits, both at once (--rpm, --tpm: a number; one not given is lifted); prints them",
    options: { rpm: { type: 'string' }, tpm: { type: 'string' } },
    async run(ctx, [id], v) {
      // PUT: the pair replaces the key's limits, as the API's route does.
      const body = { rpm: num(v.rpm, 'rpm') ?? null, tpm: num(v.tpm, 'tpm') ?? null };
      const set = await ctx.api.json<Reply<'/v1/api_keys/{key_id}/rate_limits', 'put'>>('PUT', `/api_keys/${encodeURIComponent(id ?? '')}/rate_limits`, body);
      return { json: set, text: `rpm ${set.rpm ?? 'none'} · tpm ${set.tpm ?? 'none'}` };
    },
  },
];
