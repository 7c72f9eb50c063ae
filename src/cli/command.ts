import type { ParseArgsConfig } from 'node:util';
import { ApiClient } from './client';
import { Result } from './output';

export interface Context {
  api: ApiClient;
  /** --json: machine output on stdout, no progress. */
  json: boolean;
  /** The environment runCli was given (secrets such as agent tokens come from it, never from flags). */
  env: Record<string, string | undefined>;
}

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Command {
  /** e.g. "jobs create" */
  name: string;
  args?: string;
  summary: string;
  options?: Options;
  run(ctx: Context, positionals: string[], values: Values): Promise<Result>;
}

export const str = (v: Values[string]) => (typeof v === 'string' ? v : undefined);
export const num = (v: Values[string], flag: string): number | undefined => {
  if (typeof v !== 'string') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${flag} must be a number, got '${v}'`);
  return n;
};
