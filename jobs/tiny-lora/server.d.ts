// Types for server.js, the tiny-lora model's vLLM-compatible server (plain CommonJS so it runs in a node-only image).
import type { Server } from 'node:http';

export interface ServerOptions {
  port: number;
  host: string;
  servedModelName: string;
  enableLora: boolean;
  maxLoras: number;
  maxLoraRank: number;
  maxCpuLoras: number | null;
  loraModules: { name: string; path: string }[];
  delayMs: number;
  tokenDelayMs: number;
  loadDelayMs: number;
}
export function parseArgs(argv: string[]): ServerOptions;
export function createServer(opts: ServerOptions, env?: Record<string, string | undefined>): Server;
export class ApiError extends Error {
  constructor(status: number, type: string, message: string, param?: string | null);
  status: number;
  type: string;
  param: string | null;
}
