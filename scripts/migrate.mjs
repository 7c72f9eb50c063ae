// Usage: node scripts/migrate.mjs <deploy | create NAME | status | diff-check> [--schema PATH]
// DATABASE_URL from the environment; --schema (default prisma/schema.prisma) for create and diff-check.
//   deploy      apply pending migrations (prisma migrate deploy when its native engine is here, else the wasm engine)
//   create NAME write prisma/migrations/<timestamp>_NAME from the difference between the migrations and schema.prisma
//   status      list applied and pending migrations
//   diff-check  exit 1 and print the SQL when schema.prisma and the migrations disagree (uses a shadow database)
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  ROOT,
  SCHEMA_PATH,
  createMigration,
  deployMigrations,
  diffCheck,
  findSchemaEngineBinary,
  readMigrationState,
} from './lib/migrations.mjs';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { schema: { type: 'string', default: SCHEMA_PATH } },
});
const [command, name] = positionals;
const schemaPath = path.resolve(values.schema);
const databaseUrl = process.env.DATABASE_URL;
const started = Date.now();
const redacted = (url) => url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');

function usage() {
  console.error('usage: node scripts/migrate.mjs <deploy | create NAME | status | diff-check> [--schema PATH]');
  process.exit(2);
}

if (!databaseUrl) {
  console.error('DATABASE_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/loraplane)');
  process.exit(2);
}

try {
  switch (command) {
    case 'deploy': {
      const out = await deployMigrations(databaseUrl);
      if (out.createdDatabase) console.log(`created database ${redacted(databaseUrl)}`);
      const how = {
        'up-to-date': 'nothing pending (checked _prisma_migrations, no engine loaded)',
        binary: `prisma migrate deploy with the native schema engine (${findSchemaEngineBinary()})`,
        wasm: 'wasm schema engine (no native schema engine on this machine)',
      }[out.via];
      console.log(`migrate deploy: ${how}`);
      console.log(out.applied.length ? `applied: ${out.applied.join(', ')}` : 'applied: none');
      break;
    }
    case 'create': {
      if (!name) usage();
      const { dir } = await createMigration(databaseUrl, name, { schemaPath });
      console.log(dir ? `created ${path.relative(ROOT, dir)}` : 'no changes: schema.prisma matches the migrations');
      break;
    }
    case 'status': {
      const state = await readMigrationState(databaseUrl);
      for (const m of state.applied) console.log(`applied  ${m.name}  (${m.finishedAt.toISOString()})`);
      for (const n of state.pending) console.log(`pending  ${n}`);
      for (const n of state.failed) console.log(`FAILED   ${n}`);
      for (const n of state.edited) console.log(`EDITED   ${n} (migration.sql changed after it was applied)`);
      for (const n of state.unknown) console.log(`UNKNOWN  ${n} (applied, but not in prisma/migrations)`);
      console.log(`${state.applied.length} applied, ${state.pending.length} pending`);
      if (state.failed.length || state.edited.length) process.exitCode = 1;
      break;
    }
    case 'diff-check': {
      const { inSync, sql } = await diffCheck(databaseUrl, { schemaPath });
      const schemaName = path.relative(ROOT, schemaPath);
      if (inSync) console.log(`${schemaName} and prisma/migrations agree`);
      else {
        console.log(`${schemaName} and prisma/migrations DISAGREE; a new migration would need:\n`);
        console.log(sql.trim());
        console.log('\nrun: npm run migrate:create -- <name>');
        process.exitCode = 1;
      }
      break;
    }
    default:
      usage();
  }
} catch (error) {
  console.error(`migrate ${command} failed: ${error?.message ?? error}`);
  if (error?.cause) console.error('cause:', error.cause);
  process.exitCode = 1;
} finally {
  console.error(`[migrate ${command}] ${Date.now() - started} ms`);
}
