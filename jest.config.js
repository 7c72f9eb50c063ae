// Three tiers (shared/STYLE.md): unit specs beside the code or in test/unit, integration specs against the real
// Postgres/Redis/S3/Docker started by scripts/test.mjs, and end-to-end specs that boot the whole app.
const swc = ['@swc/jest', require('./test/support/swc-options')]
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.(t|j)s$': swc },
  resolver: '<rootDir>/test/support/jest-resolver.js',
  // A worker thread cannot load TypeScript: the ingest thread's entry is a JavaScript loader under jest.
  moduleNameMapper: { '^\\./ingest-thread\\.worker$': '<rootDir>/test/support/ingest-thread.worker.js' },
  // NestJS 12 (and file-type under it), @kubernetes/client-node (with openid-client) and kubernetes-models ship ESM only;
  // Jest's CommonJS runtime needs them transformed.
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|file-type|strtok3|token-types|@tokenizer|uint8array-extras|@borewit|@kubernetes/client-node|openid-client|oauth4webapi|jose|kubernetes-models|@kubernetes-models|is-cidr|cidr-regex|ip-regex)/)'],
}
/** @type {import('jest').Config} */
module.exports = {
  // Jest reads testTimeout from the top level only (per-project values are ignored), and its 5 s default fails the
  // suites that boot the app or start containers whenever the 2-core machine is busy.
  testTimeout: 120000,
  // No forceExit: a run ends on its own; were a handle leaked, this fails the run after 30 s instead of hanging.
  globalTeardown: '<rootDir>/test/support/exit-watchdog.js',
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/unit/**/*.spec.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.spec.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.spec.ts'] },
  ],
}
