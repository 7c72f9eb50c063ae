import fs from 'node:fs';
import { Command, num, str } from '../command';
import { CliError, EXIT } from '../exit-codes';
import { table } from '../output';
import type { Body, Reply } from '../api-types';

/** Operators: projects and their keys, GPU hosts (admin scope), and serving pools with their replicas. */
export const adminCommands: Command[] = [
  {
    name: 'admin projects',
    summary: 'Every project, newest first, with how many keys still work (admin key; --after, --limit)',
    options: { after: { type: 'string' }, limit: { type: 'string' } },
    async run(ctx, _args, v) {
      const query = new URLSearchParams();
      const after = str(v.after);
      if (after) query.set('after', after);
      const limit = num(v.limit, 'limit');
      if (limit !== undefined) query.set('limit', String(limit));
      const page = await ctx.api.json<Reply<'/v1/admin/projects'>>('GET', `/admin/projects${query.size ? `?${query}` : ''}`);
      return { json: page, text: table(page.data, ['id', 'name', 'slug', 'api_keys']) };
    },
  },
  {
    name: 'admin projects create',
    args: '<name>',
    summary: 'Create a project and its first key (printed once: keep it)',
    async run(ctx, [name]) {
      const project = await ctx.api.json<Reply<'/v1/admin/projects', 'post'>>('POST', '/admin/projects', { name } satisfies Partial<Body<'/v1/admin/projects'>>);
      return { json: project, text: `project ${project.id} created; its key (shown once): ${project.api_key.value}` };
    },
  },
  {
    name: 'admin projects add-key',
    args: '<project_id>',
    summary: "A new key in a project (--name): a tenant whose keys were all revoked gets back in (printed once)",
    options: { name: { type: 'string' } },
    async run(ctx, [projectId], v) {
      const body = (str(v.name) ? { name: str(v.name) } : {}) satisfies Partial<Body<'/v1/admin/projects/{project_id}/api_keys'>>;
      const key = await ctx.api.json<Reply<'/v1/admin/projects/{project_id}/api_keys', 'post'>>('POST', `/admin/projects/${encodeURIComponent(projectId ?? '')}/api_keys`, body);
      return { json: key, text: `key ${key.id} (${key.name}) created in ${projectId}; its value (shown once): ${key.value}` };
    },
  },
  {
    name: 'admin gpu-hosts',
    summary: 'Registered GPU hosts and which job holds each GPU (admin key)',
    async run(ctx) {
      const page = await ctx.api.json<Reply<'/v1/admin/gpu_hosts'>>('GET', '/admin/gpu_hosts');
      return { json: page, text: table(page.data, ['id', 'name', 'engine_url', 'enabled', 'usd_per_gpu_hour']) };
    },
  },
  {
    name: 'admin gpu-hosts add',
    args: '<host.json>',
    summary: 'Register a GPU host from a JSON file (the body of POST /v1/admin/gpu_hosts)',
    async run(ctx, [file]) {
      if (!file) throw new CliError('admin gpu-hosts add needs a JSON file', EXIT.badInput);
      let body: unknown;
      try {
        body = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (err) {
        throw new CliError(`${file}: ${(err as Error).message}`, EXIT.badInput);
      }
      const host = await ctx.api.json<Reply<'/v1/admin/gpu_hosts', 'post'>>('POST', '/admin/gpu_hosts', body);
      return { json: host, text: host.id };
    },
  },
  {
    name: 'admin pools',
    summary: "The project's serving pools",
    async run(ctx) {
      const page = await ctx.api.json<Reply<'/v1/serving/pools'>>('GET', '/serving/pools');
      return { json: page, text: table(page.data, ['name', 'base_model', 'replicas']) };
    },
  },
  {
    name: 'admin pools create',
    args: '<name>',
    summary: 'Create a serving pool (--base-model, --max-lora-rank, --max-loras)',
    options: { 'base-model': { type: 'string' }, 'max-lora-rank': { type: 'string' }, 'max-loras': { type: 'string' }, 'served-model-name': { type: 'string' } },
    async run(ctx, [name], v) {
      // Partial: a missing flag goes as a missing field, and the API names it.
      const body = {
        name,
        base_model: str(v['base-model']),
        max_lora_rank: num(v['max-lora-rank'], 'max-lora-rank') ?? 16,
        max_loras: num(v['max-loras'], 'max-loras') ?? 1,
        ...(str(v['served-model-name']) ? { served_model_name: str(v['served-model-name']) } : {}),
      } satisfies Partial<Body<'/v1/serving/pools'>>;
      const pool = await ctx.api.json<Reply<'/v1/serving/pools', 'post'>>('POST', '/serving/pools', body);
      return { json: pool, text: `pool ${pool.name} created` };
    },
  },
  {
    name: 'admin pools add-replica',
    args: '<pool> <name>',
    summary: 'Register a vLLM replica and its agent (--vllm-url, --agent-url; the token from LORAPLANE_AGENT_TOKEN)',
    options: { 'vllm-url': { type: 'string' }, 'agent-url': { type: 'string' } },
    async run(ctx, [pool, name], v) {
      // The token is read from the environment, not a flag, so it stays out of shell history and process lists.
      const token = ctx.env.LORAPLANE_AGENT_TOKEN;
      if (!token) throw new CliError('set LORAPLANE_AGENT_TOKEN to the agent token', EXIT.badInput);
      const body = { name, vllm_url: str(v['vllm-url']), agent_url: str(v['agent-url']), agent_token: token } satisfies Partial<Body<'/v1/serving/pools/{pool}/replicas'>>;
      const res = await ctx.api.json<Reply<'/v1/serving/pools/{pool}/replicas', 'post'>>('POST', `/serving/pools/${encodeURIComponent(pool ?? '')}/replicas`, body);
      return { json: res, text: `replica ${name} added to ${pool}` };
    },
  },
  {
    name: 'admin pools get',
    args: '<pool>',
    summary: 'A pool: replicas with status, deployments (no-effect warnings), aliases',
    async run(ctx, [pool]) {
      const p = await ctx.api.json<Reply<'/v1/serving/pools/{pool}'>>('GET', `/serving/pools/${encodeURIComponent(pool ?? '')}`);
      return { json: p, text: `${table(p.replicas, ['name', 'status', 'in_sync', 'last_error'])}\n\n${table(p.deployments, ['served_name', 'warning'])}` };
    },
  },
];
