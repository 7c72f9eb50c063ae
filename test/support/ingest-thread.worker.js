// The ingest thread's entry under jest (jest.config.js maps './ingest-thread.worker' here). Jest compiles TypeScript
// in memory, so there is no .js for a worker thread to load: this file, plain JavaScript, teaches the thread's
// require to compile .ts files with swc (as jest does), then loads the real worker from src/.
const { transformSync } = require('@swc/core');
const fs = require('node:fs');
const path = require('node:path');
const swcOptions = require('./swc-options');

require.extensions['.ts'] = (module, filename) => {
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), { ...swcOptions, filename, sourceMaps: 'inline' });
  module._compile(code, filename);
};
require(path.join(__dirname, '../../src/datasets/ingest-thread.worker.ts'));
