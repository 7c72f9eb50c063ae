// The opt-in tier against a real cluster: `KUBECONFIG=... npm run test:k8s`. Not part of `npm test` (CI has no
// cluster); it runs the runtime lifecycle of test/integration/kubernetes-runtime.spec.ts on real Kubernetes.
const path = require('node:path');
const base = require('../../jest.config.js');

module.exports = {
  rootDir: path.join(__dirname, '../..'),
  testTimeout: 600000,
  forceExit: true,
  projects: [{ ...base.projects[0], rootDir: path.join(__dirname, '../..'), displayName: 'k8s', testMatch: ['<rootDir>/test/k8s/**/*.spec.ts'] }],
};
