import { LoggerService } from '@nestjs/common';
import pino, { Logger } from 'pino';
import { requestContext } from './request-context';

/**
 * Structured JSON logs. Anything that may hold a secret is redacted by path, and API keys are scrubbed from
 * free text as a second line of defence (a key pasted into a message must not reach the log).
 */
const SECRET_FIELDS = [
  'authorization', 'Authorization', 'apiKey', 'api_key', 'password', 'secret', 'secretAccessKey', 'S3_SECRET_ACCESS_KEY',
  'LORAPLANE_API_KEY', 'LORAPLANE_JOB_SPEC', 'url', 'fields',
];
// pino's `*.x` matches one level down only; list the top level too (JsonLogger spreads Nest's objects there).
const REDACT_PATHS = [...SECRET_FIELDS, ...SECRET_FIELDS.map((f) => `*.${f}`), 'req.headers.authorization'];
const KEY_PATTERN = /\blp_[A-Za-z0-9]{20,}\b/g;
const WEBHOOK_SECRET_PATTERN = /\bwhsec_[A-Za-z0-9+/]{20,}={0,2}/g;
const SIGNED_URL_PATTERN = /(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature)=[^&\s"]+/g;

export function scrubSecrets(text: string): string {
  return text.replace(KEY_PATTERN, 'lp_[redacted]').replace(WEBHOOK_SECRET_PATTERN, 'whsec_[redacted]').replace(SIGNED_URL_PATTERN, '$1=[redacted]');
}

/** Nest's start-up chatter (one line per module and per route) is for debugging, not for every start. */
const QUIET_CONTEXTS = new Set(['RoutesResolver', 'RouterExplorer', 'InstanceLoader']);

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };

/** One readable line per record for a person at a terminal: time, level, context, message, then the other fields. */
export function prettyLine(json: string): string {
  const { time, level, msg, context, service: _service, ...rest } = JSON.parse(json) as Record<string, unknown>;
  const clock = typeof time === 'string' ? time.slice(11, 23) : '';
  const fields = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const name = typeof level === 'string' ? level.toUpperCase().padEnd(5) : (LEVEL_NAMES[Number(level)] ?? String(level));
  return `${clock} ${name} ${context ? `[${String(context)}] ` : ''}${msg ?? ''}${fields ? `  ${fields}` : ''}\n`;
}

export function createRootLogger(level: string, format: 'json' | 'pretty' = 'json'): Logger {
  return createLogger(level, format, true);
}

/**
 * The access log: one line per request with fixed fields (method, path without its query, status, ms) that never
 * hold a secret, so it skips the redaction pass that cost every request a copy of the record.
 */
export function createAccessLogger(level: string, format: 'json' | 'pretty' = 'json'): Logger {
  return createLogger(level, format, false);
}

function createLogger(level: string, format: 'json' | 'pretty', redact: boolean): Logger {
  const destination = format === 'pretty' ? { write: (line: string) => process.stdout.write(prettyLine(line)) } : undefined;
  return pino({
    level,
    base: { service: 'loraplane' },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(redact ? { redact: { paths: REDACT_PATHS, censor: '[redacted]' } } : {}),
    formatters: { level: (label) => ({ level: label }) },
    hooks: {
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? scrubSecrets(a) : a)) as typeof args;
        method.apply(this, scrubbed);
      },
    },
    mixin() {
      const ctx = requestContext.getStore();
      return ctx ? { requestId: ctx.requestId, projectId: ctx.projectId } : {};
    },
  }, destination);
}

/**
 * Nest's logger interface over pino, so framework messages are JSON lines too. Nest calls `level(message,
 * ...params, context)`: the last string is the context; a string with stack frames is a stack; another string is
 * the text of a structured message (`logger.warn({ err }, 'could not ...')`).
 */
export class JsonLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}
  log(message: unknown, ...params: unknown[]) { this.write('info', message, params); }
  error(message: unknown, ...params: unknown[]) { this.write('error', message, params); }
  warn(message: unknown, ...params: unknown[]) { this.write('warn', message, params); }
  debug(message: unknown, ...params: unknown[]) { this.write('debug', message, params); }
  verbose(message: unknown, ...params: unknown[]) { this.write('trace', message, params); }
  fatal(message: unknown, ...params: unknown[]) { this.write('fatal', message, params); }

  private write(requested: pino.Level, message: unknown, params: unknown[]) {
    const strings = params.filter((p): p is string => typeof p === 'string');
    const isStack = (p: string) => /\n[ \t]+at /.test(p);
    const last = params.at(-1);
    const context = typeof last === 'string' && !isStack(last) ? strings.pop() : undefined;
    const level = requested === 'info' && context && QUIET_CONTEXTS.has(context) ? 'debug' : requested;
    const stack = strings.find(isStack);
    const text = strings.find((p) => p !== stack);
    const fields: Record<string, unknown> = { context };
    if (stack) fields.stack = stack;
    if (message instanceof Error) this.logger[level]({ ...fields, err: message }, text ?? message.message);
    else if (typeof message === 'object' && message !== null) this.logger[level]({ ...fields, ...message }, text);
    else this.logger[level](fields, text ? `${String(message)} ${text}` : String(message));
  }
}
