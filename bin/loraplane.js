#!/usr/bin/env node
// The `loraplane` command (package.json "bin"). Runs the compiled CLI: `npm run build` first in a clone.
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('loraplane: the CLI is not built yet; run `npm run build` in the loraplane checkout\n');
  process.exit(1);
}
require(entry).runCli(process.argv.slice(2)).then((code) => process.exit(code));
