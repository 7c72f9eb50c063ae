import { Injectable } from '@nestjs/common';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { parseTarget, RefusedTarget, refusedCause, TargetGuard } from '../common/net/target-guard';

export interface SendResult {
  /** The receiver's HTTP status; null when no answer came (refused target, connection error, timeout). */
  status: number | null;
  /** Why it did not succeed, in words safe to store and show (no secret, no header). */
  error: string | null;
  responseMs: number;
}

/** Answers are read and dropped, up to this much; a receiver has no reason to send more. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * Webhook receivers over HTTP: one POST per attempt, through the target guard's `lookup` (so the address connected
 * to is the one checked), no redirects followed (a 3xx is a failed attempt: a redirect could point anywhere), and
 * one time limit for connect, send and answer.
 */
@Injectable()
export class WebhookSender {
  constructor(private readonly guard: TargetGuard) {}

  async post(url: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<SendResult> {
    const t0 = Date.now();
    const done = (status: number | null, error: string | null): SendResult => ({ status, error, responseMs: Date.now() - t0 });
    let target: URL;
    try {
      const parsed = parseTarget(url);
      // node:http does not call `lookup` for an IP literal, so a literal is judged here.
      const refused = isIP(parsed.host) ? this.guard.refusal(parsed.host) : null;
      if (refused) throw refused;
      target = parsed.url;
    } catch (err) {
      if (err instanceof RefusedTarget) return done(null, `refused: ${err.message}`);
      throw err;
    }
    const client = target.protocol === 'https:' ? https : http;
    return new Promise<SendResult>((resolve) => {
      const req = client.request(
        target,
        {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': 'loraplane-webhooks/1' },
          lookup: this.guard.lookup as unknown as http.RequestOptions['lookup'],
          signal: AbortSignal.timeout(timeoutMs),
          agent: false,
        },
        (res) => {
          let read = 0;
          res.on('data', (chunk: Buffer) => {
            read += chunk.length;
            if (read > MAX_RESPONSE_BYTES) res.destroy();
          });
          const status = res.statusCode ?? 0;
          const finish = () => resolve(done(status, status >= 200 && status < 300 ? null : `the receiver answered HTTP ${status}`));
          res.on('end', finish);
          res.on('close', finish); // destroyed after too much data: the status still counts
          res.on('error', () => undefined); // 'close' follows and settles the attempt
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        const refused = refusedCause(err);
        if (refused) resolve(done(null, `refused: ${refused.message}`));
        else if (err.name === 'TimeoutError' || err.name === 'AbortError') resolve(done(null, `no answer within ${timeoutMs} ms`));
        else resolve(done(null, err.message));
      });
      req.end(body);
    });
  }
}
