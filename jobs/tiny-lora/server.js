'use strict';
/**
 * A vLLM-compatible server for the tiny-lora DEVELOPMENT model: the OpenAI-compatible chat API plus vLLM's runtime
 * LoRA API, imitated exactly as shared/reference/vllm-lora.md describes it (plain-text success bodies, the error
 * envelope with the HTTP status as `code`, 400 when a name is already loaded, 404 when the path is missing,
 * load_inplace, adapter cards in /v1/models, routes absent unless runtime updating is allowed). It exists so that
 * the adapter agent, the serving reconciler and evals run against a real server on machines without GPUs; the
 * difference between base and adapter answers is computed by the model, never canned. It is not vLLM and never
 * stands in for GPT-OSS in a claim.
 *
 * Usage: node server.js [--port 8000] [--host 127.0.0.1] [--served-model-name tiny-lora] [--enable-lora]
 *        [--max-loras 1] [--max-lora-rank 16] [--max-cpu-loras N] [--lora-modules name=path ...] [--delay-ms 0]
 *        [--token-delay-ms 0] [--load-delay-ms 0]
 * --delay-ms adds latency to each completion request, --token-delay-ms to each streamed token and --load-delay-ms
 * to each adapter load, standing in for the time a GPU server spends generating or moving adapter weights to the
 * GPU (waiting, not computing). All are zero by default.
 * Runtime loading needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=1 (or true), as in vLLM.
 */
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const model = require('./model');
const tokenizer = require('./tokenizer');
const { ApiError, MAX_MODEL_LEN, respond } = require('./completions');

const ALLOWED_RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512];

function parseArgs(argv) {
  const opts = {
    port: 8000,
    host: '127.0.0.1',
    servedModelName: model.MODEL_NAME,
    enableLora: false,
    maxLoras: 1,
    maxLoraRank: 16,
    maxCpuLoras: null,
    loraModules: [],
    delayMs: 0,
    tokenDelayMs: 0,
    loadDelayMs: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case '--port': opts.port = Number(next()); break;
      case '--host': opts.host = next(); break;
      case '--served-model-name': opts.servedModelName = next(); break;
      case '--enable-lora': opts.enableLora = true; break;
      case '--max-loras': opts.maxLoras = Number(next()); break;
      case '--max-lora-rank': opts.maxLoraRank = Number(next()); break;
      case '--max-cpu-loras': opts.maxCpuLoras = Number(next()); break;
      case '--delay-ms': opts.delayMs = Number(next()); break;
      case '--token-delay-ms': opts.tokenDelayMs = Number(next()); break;
      case '--load-delay-ms': opts.loadDelayMs = Number(next()); break;
      case '--lora-modules':
        while (i + 1 < argv.length && !argv[i + 1].startsWith('--')) opts.loraModules.push(parseLoraModule(argv[++i]));
        break;
      default: throw new Error(`unknown argument ${arg}`);
    }
  }
  if (!ALLOWED_RANKS.includes(opts.maxLoraRank)) {
    throw new Error(`--max-lora-rank must be one of ${ALLOWED_RANKS.join(', ')}, got ${opts.maxLoraRank}`);
  }
  opts.maxCpuLoras ??= opts.maxLoras;
  if (opts.maxCpuLoras < opts.maxLoras) throw new Error('--max-cpu-loras must be >= --max-loras');
  return opts;
}

function parseLoraModule(text) {
  if (text.startsWith('{')) {
    const j = JSON.parse(text);
    return { name: j.name, path: j.path };
  }
  const eq = text.indexOf('=');
  if (eq < 1) throw new Error(`--lora-modules expects name=path, got ${text}`);
  return { name: text.slice(0, eq), path: text.slice(eq + 1) };
}

/**
 * The adapters this process knows (runtime-loaded or static), and an LRU of their weights capped at
 * --max-cpu-loras. An evicted adapter is read again from its lora_path on next use, which is why vLLM needs the
 * files to stay on disk after loading; here too a request fails if they are gone.
 */
class LoraRegistry {
  constructor(opts) {
    this.opts = opts;
    this.known = new Map(); // name -> { name, path, id, created }
    this.cache = new Map(); // name -> weights, in LRU order
    this.nextId = 1;
  }

  add(name, lorapath, inplace) {
    if (this.known.has(name) && !inplace) {
      throw new ApiError(400, 'InvalidUserInput', `The lora adapter '${name}' has already been loaded. If you want to load the adapter in place, set 'load_inplace' to True.`);
    }
    if (!path.isAbsolute(lorapath) || !fs.existsSync(path.join(lorapath, 'adapter_config.json'))) {
      throw new ApiError(404, 'NotFoundError', `Loading lora ${name} failed: No adapter found for ${lorapath}`);
    }
    const weights = this.read(name, lorapath);
    const previous = this.known.get(name);
    this.known.set(name, { name, path: lorapath, id: previous?.id ?? this.nextId++, created: Math.floor(Date.now() / 1000) });
    this.remember(name, weights);
  }

  remove(name) {
    if (!this.known.has(name)) throw new ApiError(404, 'NotFoundError', `The lora adapter '${name}' cannot be found.`);
    this.known.delete(name);
    this.cache.delete(name);
  }

  weights(name) {
    const entry = this.known.get(name);
    if (!entry) return null;
    let w = this.cache.get(name);
    if (w) {
      this.cache.delete(name); // move to the most recent end
      this.cache.set(name, w);
      return w;
    }
    w = this.read(name, entry.path);
    this.remember(name, w);
    return w;
  }

  read(name, lorapath) {
    let adapter;
    try {
      adapter = model.loadAdapter(lorapath);
    } catch (err) {
      if (err && err.code === 'ENOENT') throw new ApiError(404, 'NotFoundError', `Loading lora ${name} failed: No adapter found for ${lorapath}`);
      throw new ApiError(500, 'InternalServerError', String(err && err.message ? err.message : err));
    }
    const config = adapter.config;
    if (adapter.r > this.opts.maxLoraRank) {
      throw new ApiError(500, 'InternalServerError', `LoRA rank ${adapter.r} is greater than max_lora_rank ${this.opts.maxLoraRank}.`);
    }
    if (config.modules_to_save) throw new ApiError(500, 'InternalServerError', 'vLLM only supports modules_to_save being None.');
    return adapter;
  }

  remember(name, weights) {
    this.cache.set(name, weights);
    while (this.cache.size > this.opts.maxCpuLoras) this.cache.delete(this.cache.keys().next().value);
  }
}

function createServer(opts, env = process.env) {
  const runtimeUpdates = /^(1|true)$/i.test(env.VLLM_ALLOW_RUNTIME_LORA_UPDATING ?? '');
  const loras = new LoraRegistry(opts);
  const started = Math.floor(Date.now() / 1000);
  for (const m of opts.loraModules) loras.add(m.name, m.path, false);

  const routes = {
    'GET /health': () => ({ status: 200, text: '' }),
    'GET /v1/models': () => ({ status: 200, json: listModels() }),
    'POST /v1/chat/completions': (body, res) => generation('chat', body, res),
    'POST /v1/completions': (body, res) => generation('completion', body, res),
  };
  if (opts.enableLora && runtimeUpdates) {
    routes['POST /v1/load_lora_adapter'] = async (body) => {
      if (!body || !body.lora_name || !body.lora_path) {
        throw new ApiError(400, 'InvalidUserInput', "Both 'lora_name' and 'lora_path' must be provided.");
      }
      if (opts.loadDelayMs > 0) await new Promise((r) => setTimeout(r, opts.loadDelayMs));
      loras.add(body.lora_name, body.lora_path, body.load_inplace === true);
      return { status: 200, text: `Success: LoRA adapter '${body.lora_name}' added successfully.` };
    };
    routes['POST /v1/unload_lora_adapter'] = (body) => {
      if (!body || !body.lora_name) throw new ApiError(400, 'InvalidUserInput', "'lora_name' needs to be provided to unload a LoRA adapter.");
      loras.remove(body.lora_name);
      return { status: 200, text: `Success: LoRA adapter '${body.lora_name}' removed successfully.` };
    };
  }

  function listModels() {
    const base = {
      id: opts.servedModelName,
      object: 'model',
      created: started,
      owned_by: 'vllm',
      root: opts.servedModelName,
      parent: null,
      max_model_len: MAX_MODEL_LEN,
    };
    const cards = [...loras.known.values()].map((l) => ({
      id: l.name,
      object: 'model',
      created: l.created,
      owned_by: 'vllm',
      root: l.path,
      parent: opts.servedModelName,
      max_model_len: null,
    }));
    return { object: 'list', data: [base, ...cards] };
  }

  /** The model (base or a known adapter) a request names; vLLM's 404 when it is neither. */
  function resolve(body) {
    const name = body.model ?? opts.servedModelName;
    if (name === opts.servedModelName) return { name, adapter: null };
    const adapter = loras.weights(name);
    if (!adapter) throw new ApiError(404, 'NotFoundError', `The model \`${name}\` does not exist.`, 'model');
    return { name, adapter };
  }

  async function generation(kind, body, res) {
    if (body === null || typeof body !== 'object') throw new ApiError(400, 'BadRequestError', 'expected a JSON object');
    let messages;
    let promptTokens;
    if (kind === 'chat') {
      if (!Array.isArray(body.messages) || body.messages.length === 0) {
        throw new ApiError(400, 'BadRequestError', "'messages' must be a non-empty list", 'messages');
      }
      messages = body.messages;
      promptTokens = tokenizer.chatPromptTokens(messages);
    } else {
      if (typeof body.prompt !== 'string') throw new ApiError(400, 'BadRequestError', "'prompt' must be a string", 'prompt');
      // A raw prompt is read as one user message: the model's features do not depend on a template.
      messages = [{ role: 'user', content: body.prompt }];
      promptTokens = tokenizer.encode(body.prompt).length;
    }
    const { name, adapter } = resolve(body);
    if (opts.delayMs > 0) await new Promise((r) => setTimeout(r, opts.delayMs));
    return respond(kind, body, { name, adapter, messages, promptTokens, tokenDelayMs: opts.tokenDelayMs }, res);
  }

  return http.createServer(async (req, res) => {
    const route = routes[`${req.method} ${req.url.split('?')[0]}`];
    if (!route) {
      // FastAPI's answer for a route that does not exist (e.g. runtime LoRA routes without the env flag).
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ detail: 'Not Found' }));
      return;
    }
    try {
      let body = null;
      if (req.method === 'POST') {
        const raw = await readBody(req);
        try {
          body = raw.length ? JSON.parse(raw) : null;
        } catch {
          throw new ApiError(400, 'BadRequestError', 'Invalid JSON body');
        }
      }
      const out = await route(body, res);
      if (!out) return; // streamed
      if (out.json !== undefined) {
        res.writeHead(out.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(out.json));
      } else {
        res.writeHead(out.status, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(out.text);
      }
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(500, 'InternalServerError', String(err && err.message ? err.message : err));
      if (!res.headersSent) res.writeHead(e.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: e.message, type: e.type, param: e.param, code: e.status } }));
    }
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 16 * 1024 * 1024) {
        reject(new ApiError(400, 'BadRequestError', 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

module.exports = { createServer, parseArgs, ApiError };

if (require.main === module) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`tiny-lora server: ${err.message}\n`);
    process.exit(2);
  }
  const server = createServer(opts);
  server.listen(opts.port, opts.host, () => {
    const { port } = server.address();
    process.stdout.write(`tiny-lora (development model) serving ${opts.servedModelName} on http://${opts.host}:${port}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
