// kubernetes-models (used by the deploy manifests spec) exports its files under the `import` condition only, which
// Jest's CommonJS resolver does not ask for; those packages are resolved with it (and transformed like other ESM).
const IMPORT_ONLY = /^(kubernetes-models|@kubernetes-models\/[^/]+)(\/|$)/;

module.exports = (request, options) =>
  options.defaultResolver(request, IMPORT_ONLY.test(request) ? { ...options, conditions: ['import', 'default'] } : options);
