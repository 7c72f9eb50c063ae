// Preloaded with `node --require` into a process under test: at exit, writes the files it loaded through require
// (one absolute path a line) to $LOADED_MODULES_FILE, for a test of what a role's process loads.
const fs = require('node:fs');

process.on('exit', () => {
  fs.writeFileSync(process.env.LOADED_MODULES_FILE, Object.keys(require.cache).join('\n'));
});
