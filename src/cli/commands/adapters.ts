import { servedName } from '../../serving/served-name';
import { Command, num, str } from '../command';
import { CliError, EXIT } from '../exit-codes';
import { table } from '../output';
import type { Body, Reply } from '../api-types';

const need = (v: string | undefined, what: string) => {
  if (!v) throw new CliError(`missing ${what}`, EXIT.badInput);
  return encodeURIComponent(v);
};
const version = (v: string | undefined) => {
  const n = Number(String(v ?? '').replace(/^v/, ''));
  if (!Number.isInteger(n) || n < 1) throw new CliError(`a version is a number such as 3 or v3, got '${v ?? ''}'`, EXIT.badInput);
  return n;
};
const reasonOf = (v: Record<string, unknown>) => (str(v.reason as string) ? { reason: str(v.reason as string) } : {});

/** An alias after a move, as the OpenAPI document describes it (the GET adds its traffic). */
type AliasState = Reply<'/v1/serving/pools/{pool}/aliases/{adapter_name}/rollout', 'post'>;
type AliasFigures = Reply<'/v1/serving/pools/{pool}/aliases/{adapter_name}'>;
const aliasText = (a: AliasState) =>
  `alias -> v${a.version}${a.canary ? ` (canary v${a.canary.version} ${a.canary.by === 'requests' ? `on ${a.canary.request_share}% of requests` : `on ${a.canary.replicas} replica(s)`})` : ''}\n` +
  table(a.replicas, ['replica', 'version', 'canary', 'state', 'error']);

/** A canary by --request-share when given, else by --replicas (1 by default); the API refuses both at once. */
const canarySplit = (replicas: number | undefined, requestShare: number | undefined) =>
  requestShare === undefined ? { replicas: replicas ?? 1 } : { request_share: requestShare, ...(replicas === undefined ? {} : { replicas }) };

/** The registry and the release moves on a serving pool. */
export const adapterCommands: Command[] = [
  {
    name: 'adapters list',
    summary: "The project's adapters with their latest version",
    async run(ctx) {
      const page = await ctx.api.json<Reply<'/v1/adapters'>>('GET', '/adapters');
      return { json: page, text: table(page.data, ['name', 'latest_version', 'description']) };
    },
  },
  {
    name: 'adapters versions',
    args: '<adapter>',
    summary: "An adapter's versions, newest first, with lineage",
    async run(ctx, [name]) {
      const page = await ctx.api.json<Reply<'/v1/adapters/{adapter_name}/versions'>>('GET', `/adapters/${need(name, 'adapter name')}/versions`);
      const rows = page.data.map((v) => ({ ...v, source: v.lineage.source, job: v.lineage.job_id }));
      return { json: page, text: table(rows, ['served_name', 'base_model', 'rank', 'source', 'job']) };
    },
  },
  {
    name: 'adapters register',
    args: '<adapter>',
    summary: "Register a succeeded job's adapter (or --checkpoint) as a new immutable version",
    options: { job: { type: 'string' }, checkpoint: { type: 'string' } },
    async run(ctx, [name], v) {
      const job = str(v.job);
      if (!job) throw new CliError('adapters register needs --job', EXIT.badInput);
      const body: Body<'/v1/adapters/{adapter_name}/versions'> = { job_id: job, ...(str(v.checkpoint) ? { checkpoint_id: str(v.checkpoint) } : {}) };
      const ver = await ctx.api.json<Reply<'/v1/adapters/{adapter_name}/versions', 'post'>>('POST', `/adapters/${need(name, 'adapter name')}/versions`, body);
      return { json: ver, text: ver.served_name };
    },
  },
  {
    name: 'adapters deploy',
    args: '<pool> <adapter> <version>',
    summary: 'Load a version under its immutable name (adapter@vN) on every replica of a pool',
    async run(ctx, [pool, adapter, ver]) {
      if (!adapter) throw new CliError('missing adapter', EXIT.badInput);
      const res = await ctx.api.json<Reply<'/v1/serving/pools/{pool}/deployments', 'post'>>('POST', `/serving/pools/${need(pool, 'pool')}/deployments`, { adapter, version: version(ver) } satisfies Body<'/v1/serving/pools/{pool}/deployments'>);
      return { json: res, text: `${servedName(adapter, version(ver))} deploying to ${pool}` };
    },
  },
  ...(['rollout', 'canary', 'promote', 'rollback'] as const).map(
    (move): Command => ({
      name: `adapters ${move}`,
      args: move === 'rollout' || move === 'canary' ? '<pool> <adapter> <version>' : '<pool> <adapter>',
      summary: {
        rollout: 'Point the alias at a version on every replica (through the promotion gate; exit 4 when refused)',
        canary: 'Serve a version under the alias on --replicas k replicas, or on --request-share P % of its requests (sticky per user)',
        promote: 'Make the canary the alias everywhere (through the promotion gate; exit 4 when refused)',
        rollback: 'Call off the canary, or return the alias to its previous version',
      }[move],
      options: { reason: { type: 'string' }, ...(move === 'canary' ? { replicas: { type: 'string' }, 'request-share': { type: 'string' } } : {}) },
      async run(ctx, [pool, adapter, ver], v) {
        const body = {
          ...(move === 'rollout' || move === 'canary' ? { version: version(ver) } : {}),
          ...(move === 'canary' ? canarySplit(num(v.replicas, 'replicas'), num(v['request-share'], 'request-share')) : {}),
          ...reasonOf(v),
        };
        const state = await ctx.api.json<AliasState>('POST', `/serving/pools/${need(pool, 'pool')}/aliases/${need(adapter, 'adapter')}/${move}`, body);
        return { json: state, text: aliasText(state) };
      },
    }),
  ),
  {
    name: 'adapters status',
    args: '<pool> <adapter>',
    summary: 'Where the alias points and what each replica serves',
    async run(ctx, [pool, adapter]) {
      const state = await ctx.api.json<AliasFigures>('GET', `/serving/pools/${need(pool, 'pool')}/aliases/${need(adapter, 'adapter')}`);
      return { json: state, text: aliasText(state) };
    },
  },
  {
    name: 'adapters history',
    args: '<pool> <adapter>',
    summary: "The alias's moves, newest first: who, when, from, to, why",
    async run(ctx, [pool, adapter]) {
      const page = await ctx.api.json<Reply<'/v1/serving/pools/{pool}/aliases/{adapter_name}/history'>>('GET', `/serving/pools/${need(pool, 'pool')}/aliases/${need(adapter, 'adapter')}/history`);
      const rows = page.data.map((e) => ({ ...e, when: new Date(e.created_at * 1000).toISOString() }));
      return { json: page, text: table(rows, ['when', 'action', 'from_version', 'to_version', 'actor', 'reason']) };
    },
  },
];
