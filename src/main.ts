import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createRootLogger, JsonLogger } from './common/logger';
import { Config } from './config/config';
import { ConfigError } from './config/config.schema';
import type { Started } from './started';

export type { Started } from './started';

/**
 * Starts the roles the config asks for. Used by main() and by the end-to-end tests. Each kind of process loads only
 * its own module graph, when it starts (hence require, not import): a gateway never loads the rest of the app, so
 * a gateway replica is ready sooner and holds less (measured: ready in 0.7 s instead of 1.1 s, ~90 MB less RSS).
 */
export async function start(config: Config): Promise<Started> {
  const format = config.env.LOG_FORMAT === 'auto' ? (process.stdout.isTTY ? 'pretty' : 'json') : config.env.LOG_FORMAT;
  const root = createRootLogger(config.env.LOG_LEVEL, format);
  const logger = new JsonLogger(root);
  if (config.env.LORAPLANE_ROLE === 'gateway') {
    const { startGateway } = require('./start-gateway') as typeof import('./start-gateway');
    return startGateway(config, root, logger);
  }
  const { startApp } = require('./start-app') as typeof import('./start-app');
  return startApp(config, root, logger, format);
}

async function main() {
  let config: Config;
  try {
    config = Config.fromEnv(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`loraplane: ${err.message}\nSee .env.example for every variable.\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const started = await start(config);
  const log = new Logger('loraplane');
  // Graceful stop: finish in-flight requests, let workers hand their tasks back, close connections, exit 0.
  // Training containers keep running; the next worker re-attaches to them by label.
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      log.log(`${signal}: shutting down`);
      started.close().then(
        () => process.exit(0),
        (err) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
  log.log(`role=${config.env.LORAPLANE_ROLE} mode=${config.env.LORAPLANE_MODE}${started.url ? ` listening on ${started.url}` : ''}`);
  // `npm run dev` passes --no-welcome: it prints its own, fuller one once its local serving pool is up.
  if (started.url && !process.argv.includes('--no-welcome')) {
    const key = started.createdApiKey ?? config.env.LORAPLANE_API_KEY;
    const shown = started.createdApiKey ? key : key ? `${key.slice(0, 8)}... (LORAPLANE_API_KEY)` : '<an API key>';
    // Printed for a person at a terminal, not as a log line; the key appears only when it was just created.
    process.stdout.write(
      [
        '',
        `  loraplane is running: ${started.url}`,
        `  API docs:             ${started.url}/docs`,
        `  API key:              ${shown}${started.createdApiKey ? '   (shown once; set LORAPLANE_API_KEY to keep one across restarts)' : ''}`,
        '',
        '  Try it with the official openai SDK (npm i openai):',
        `    const client = new OpenAI({ baseURL: '${started.url}/v1', apiKey: process.env.LORAPLANE_API_KEY });`,
        "    const file = await client.files.create({ file: fs.createReadStream('train.jsonl'), purpose: 'fine-tune' });",
        "    const job = await client.fineTuning.jobs.create({ model: 'tiny-lora', training_file: file.id });",
        '    // once it succeeded (a pool marked auto_deploy serves it within seconds):',
        "    const answer = await client.chat.completions.create({ model: job.fine_tuned_model, messages: [{ role: 'user', content: 'Hi' }] });",
        '',
        '  or curl:',
        `    curl -H "Authorization: Bearer $LORAPLANE_API_KEY" ${started.url}/v1/models`,
        `    curl -H "Authorization: Bearer $LORAPLANE_API_KEY" -H 'content-type: application/json' ${started.url}/v1/chat/completions \\`,
        `      -d '{"model": "tiny-lora", "messages": [{"role": "user", "content": "Hi"}]}'`,
        '',
      ].join('\n'),
    );
  }
}

/** Starts the process as `npm start` does; also the container image's entry point (deploy/entrypoint.js). */
export function runMain(): void {
  main().catch((err) => {
    process.stderr.write(`loraplane failed to start: ${err?.stack ?? err}\n`);
    process.exit(1);
  });
}

if (require.main === module) runMain();
