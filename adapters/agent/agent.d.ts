// Types for agent.js (plain CommonJS, zero dependencies, so it runs in a node-only image).
import type { Server } from 'node:http';

export interface AgentConfig {
  token: string;
  host: string;
  port: number;
  vllmUrl: string;
  vllmApiKey: string | null;
  adapterDir: string;
  syncIntervalMs: number;
  httpTimeoutMs: number;
}
export interface DesiredFile { name: string; url: string; sha256: string; bytes: number }
export interface DesiredAdapter { name: string; version: string; files: DesiredFile[] }
export interface Desired { generation: number; adapters: DesiredAdapter[] }
export interface AdapterStatus { name: string; version: string; state: 'pending' | 'downloading' | 'ready' | 'loaded' | 'error'; error?: string; at: number }
export interface AgentReport {
  generation: number;
  last_sync_at: string | null;
  vllm: { reachable: boolean | null; error: string | null; loaded: { name: string; root: string }[] };
  adapters: AdapterStatus[];
}
export function loadConfig(env: Record<string, string | undefined>): AgentConfig;
export function parseDesired(body: unknown): Desired;
export class Agent {
  constructor(config: AgentConfig, log?: (line: Record<string, unknown>) => void);
  config: AgentConfig;
  setDesired(doc: Desired): void;
  report(): AgentReport;
  start(): void;
  stop(): Promise<void>;
  sync(): Promise<void>;
}
export function createAgentServer(agent: Agent): Server;
