import type { KubeConfig } from '@kubernetes/client-node';
import http from 'node:http';
import https from 'node:https';

/**
 * Follows one container's log (GET /api/v1/namespaces/{ns}/pods/{pod}/log?follow=true). client-node's Log pipes the
 * response into a stream and cannot tell a finished log from a dropped connection, so this speaks HTTP itself,
 * with the kubeconfig's TLS and credentials. Lines are numbered from the start of the container's output: after
 * a reconnect the log is read again from its start and the lines already delivered are skipped, so every line
 * keeps its number (the per-line event key) and none is delivered twice.
 */
export interface LogTarget {
  namespace: string;
  pod: string;
  container: string;
}

export type StreamEnd = 'ended' | 'broken';

export class KubernetesLogFollower {
  constructor(private readonly kubeConfig: KubeConfig) {}

  /**
   * One connection: calls `onLine(line, lineNo)` for each complete line past `skip`; resolves 'ended' when the server
   * ended the stream (the container stopped; a last line without a newline is delivered then) and 'broken' when
   * the connection failed first (only complete lines are delivered, the partial one comes again next time).
   */
  async stream(target: LogTarget, skip: number, onLine: (line: string, lineNo: number) => Promise<void>, signal?: AbortSignal): Promise<StreamEnd> {
    const res = await this.open(target, signal);
    let buffered = '';
    let lineNo = 0;
    const deliver = async (line: string) => {
      lineNo += 1;
      if (lineNo > skip) await onLine(line.endsWith('\r') ? line.slice(0, -1) : line, lineNo);
    };
    let clean = false;
    res.on('end', () => (clean = true));
    try {
      for await (const chunk of res) {
        buffered += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          await deliver(line);
        }
      }
    } catch {
      return 'broken'; // reset or aborted mid-stream: the caller decides whether to reconnect
    }
    if (!clean) return 'broken';
    if (buffered) await deliver(buffered);
    return 'ended';
  }

  private async open(target: LogTarget, signal?: AbortSignal): Promise<http.IncomingMessage> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    const opts: https.RequestOptions = { headers: {} };
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const url = new URL(`${cluster.server.replace(/\/$/, '')}/api/v1/namespaces/${target.namespace}/pods/${target.pod}/log`);
    url.searchParams.set('container', target.container);
    url.searchParams.set('follow', 'true');
    const client = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(url, { ...opts, method: 'GET', signal }, (res) => {
        if (res.statusCode === 200) return resolve(res);
        let body = '';
        res.on('data', (c) => (body += c)).on('end', () => reject(new LogRequestError(res.statusCode ?? 0, statusMessage(body))));
      });
      req.on('error', reject);
      req.end();
    });
  }
}

export class LogRequestError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'LogRequestError';
  }
}

function statusMessage(body: string): string {
  try {
    return (JSON.parse(body) as { message?: string }).message ?? body.slice(0, 300);
  } catch {
    return body.slice(0, 300);
  }
}
