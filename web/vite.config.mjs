import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));

// No plugin needed: Vite's own transformer compiles TSX with React's automatic runtime (tsconfig "jsx").
export default defineConfig({
  root: here,
  base: '/',
  build: {
    outDir: path.join(here, '../dist/public'),
    emptyOutDir: true,
    // The CSP forbids inline scripts; Vite's module preload polyfill would be one.
    modulePreload: { polyfill: false },
    target: 'es2022',
    reportCompressedSize: false,
  },
  logLevel: 'warn',
});
