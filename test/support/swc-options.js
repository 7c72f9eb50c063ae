// How the tests compile TypeScript with swc: jest's transform (jest.config.js) and the ingest thread's loader
// (ingest-thread.worker.js) use the same options, so code runs the same on either side of the thread boundary.
module.exports = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: 'es2022',
  },
  module: { type: 'commonjs' },
};
