// The image's entry point: LORAPLANE_ROLE picks the process. `migrations` applies prisma/migrations and exits
// (the Kubernetes migration Job); every other role is the control plane itself (src/main.ts validates the value).
// An entry point, so it reads process.env (shared/STYLE.md #4).
const role = process.env.LORAPLANE_ROLE;
if (role === 'migrations') {
  process.argv = [process.argv[0], '/app/scripts/migrate.mjs', 'deploy'];
  import('../scripts/migrate.mjs');
} else {
  require('../dist/main.js').runMain();
}
