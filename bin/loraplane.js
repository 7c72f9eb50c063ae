#!/usr/bin/env node
// The `loraplane` command (package.json "bin"). Runs the compiled CLI (dist/, from `npm run build`); in a clone that
// has not been built yet (right after `npm ci`), it runs the CLI's TypeScript sources instead, compiled in memory
// with @swc/core (a dev dependency): src/cli imports only itself and leaf modules of src without runtime imports
// (served-name.ts, job-statuses.ts), so no build step is needed to use it.
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const Module = require('node:module');

const root = path.join(__dirname, '..');
const built = path.join(root, 'dist', 'cli', 'main.js');
const source = path.join(root, 'src', 'cli', 'main.ts');

function fromSource() {
  let swc;
  try {
    swc = require('@swc/core');
  } catch {
    return null; // an installed package without dev dependencies runs dist/ only
  }
  const options = { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' }, sourceMaps: 'inline' };
  Module._extensions['.ts'] = (module, filename) => module._compile(swc.transformFileSync(filename, options).code, filename);
  return require(source);
}

const cli = fs.existsSync(built) ? require(built) : fs.existsSync(source) ? fromSource() : null;
if (!cli) {
  process.stderr.write('loraplane: the CLI is not built; run `npm run build` (or `npm ci` for the dev tools) in the loraplane checkout\n');
  process.exit(1);
}
cli.runCli(process.argv.slice(2)).then((code) => process.exit(code));
