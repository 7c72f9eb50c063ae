// Prisma's schema engine compiled to WebAssembly (@prisma/schema-engine-wasm), driven through @prisma/adapter-pg.
//
// Why: the Prisma CLI needs a native schema-engine binary that it downloads from Prisma's own host, which air-gapped
// installs (and this project's machines) cannot reach. The wasm build of the same engine applies, diffs and creates
// migrations offline, and writes `_prisma_migrations` exactly as `prisma migrate deploy` does, so both tools can be
// used on the same database. Three things in adapter-pg 7.x needed fixing for it; each fix says why where it is.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';

const require = createRequire(import.meta.url);
// The package's own entry imports the .wasm as an ES module (bundler target), which Node cannot load; so we take the
// wasm-bindgen glue module and instantiate the .wasm beside it ourselves.
const GLUE = require.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
const WASM = path.join(path.dirname(GLUE), 'schema_engine_bg.wasm');

/** Filters that include everything (no external tables or enums). */
export const noFilter = { externalTables: [], externalEnums: [] };

/** pg's internal single-byte `"char"` type, which pg_catalog columns such as pg_class.relkind use. */
const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;

/**
 * Fix 1: adapter-pg has no column-type mapping for `"char"` (OID 18) and throws UnsupportedNativeDataType, but the
 * schema describer (used by diff and create, not by apply or status) selects such columns from pg_catalog. pg already
 * parses them as text, so reporting the column as text is exact.
 */
function reportCharAsText(queryable) {
  const performIO = queryable.performIO.bind(queryable);
  queryable.performIO = async (query) => {
    const result = await performIO(query);
    for (const field of result?.fields ?? []) if (field.dataTypeID === PG_CHAR_OID) field.dataTypeID = PG_TEXT_OID;
    return result;
  };
  if (typeof queryable.startTransaction === 'function') {
    const startTransaction = queryable.startTransaction.bind(queryable);
    queryable.startTransaction = async (...args) => reportCharAsText(await startTransaction(...args));
  }
  return queryable;
}

class MigrationPg extends PrismaPg {
  /**
   * Connections this factory opened and nobody closed yet. engine.free() does not dispose them, and an idle pg pool
   * keeps the process alive for its 10 s idle timeout; disposeAll() closes them when the engine is done.
   */
  open = new Set();

  async connect() {
    const adapter = reportCharAsText(await super.connect());
    const dispose = adapter.dispose.bind(adapter);
    adapter.dispose = async () => {
      this.open.delete(adapter);
      await dispose();
    };
    this.open.add(adapter);
    return adapter;
  }

  async disposeAll() {
    await Promise.all([...this.open].map((adapter) => adapter.dispose()));
  }

  /**
   * Fix 2: adapter-pg's own connectToShadowDb() drops the shadow database while its pool still holds a connection to
   * it, so the DROP fails ("is being accessed by other users") and every diff leaves a database behind. Close the
   * shadow pool first, then drop WITH (FORCE).
   */
  async connectToShadowDb() {
    const admin = await this.connect();
    const database = `prisma_migrate_shadow_db_${globalThis.crypto.randomUUID()}`;
    await admin.executeScript(`CREATE DATABASE "${database}"`);
    let shadow;
    try {
      shadow = await new MigrationPg({ ...this.config, database }).connect();
    } catch (error) {
      await admin.executeScript(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await admin.dispose();
      throw error;
    }
    const closeShadow = shadow.dispose.bind(shadow);
    shadow.dispose = async () => {
      try {
        await closeShadow();
        await admin.executeScript(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      } finally {
        await admin.dispose();
      }
    };
    return shadow;
  }
}

/**
 * Fix 3: pass host/port/user/password/database as separate fields, never a connectionString. connectToShadowDb()
 * builds the shadow pool as { ...config, database: shadow }, and pg lets a connectionString override `database`, so
 * the "shadow" database would silently be the real one (and the engine resets shadow databases).
 */
export function pgConfigFromUrl(databaseUrl) {
  const url = new URL(databaseUrl);
  if (!/^postgres(ql)?:$/.test(url.protocol)) throw new Error(`not a postgresql:// URL: ${url.protocol}`);
  const sslmode = url.searchParams.get('sslmode');
  return {
    host: decodeURIComponent(url.hostname) || '127.0.0.1',
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username) || 'postgres',
    password: url.password ? decodeURIComponent(url.password) : undefined,
    database: decodeURIComponent(url.pathname.slice(1)) || 'postgres',
    ...(sslmode && sslmode !== 'disable' && sslmode !== 'prefer'
      ? { ssl: { rejectUnauthorized: sslmode.startsWith('verify') } }
      : {}),
  };
}

/**
 * The glue module and the wasm instance behind it, once per process: wasm-bindgen glue holds ONE instance in module
 * state, so instantiating again would pull the memory out from under engines that are still alive.
 */
let runtime;
function loadRuntime() {
  runtime ??= (async () => {
    const glue = await import(GLUE);
    // The engine arms 10 s timeout timers that it never clears (the glue imports no clearTimeout), which kept every
    // command's process alive for 10 s after the work was done. They only time out database I/O, which holds the
    // process open by itself while it is pending, so they need not: unref them.
    const imports = { ...glue };
    for (const name of Object.keys(glue).filter((key) => key.startsWith('__wbg_setTimeout_'))) {
      imports[name] = (callback, ms) => setTimeout(callback, ms >>> 0).unref();
    }
    const instance = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(WASM)), {
      './schema_engine_bg.js': imports,
    });
    glue.__wbg_set_wasm(instance.exports);
    instance.exports.__wbindgen_start();
    // The engine reports Rust panics through this global; without it a panic surfaces as an opaque "unreachable".
    globalThis.PRISMA_WASM_PANIC_REGISTRY ??= {
      message: '',
      get() {
        return this.message;
      },
      set_message(message) {
        this.message = `RuntimeError: ${message}`;
      },
    };
    return glue;
  })();
  return runtime;
}

/**
 * Runs `fn(engine)` with a schema engine connected to `databaseUrl`, then frees the engine and closes its
 * connections. Commands take their schema and migrations as arguments, so the engine starts with no datamodel.
 */
export async function withEngine({ databaseUrl, debug = !!process.env.SCHEMA_ENGINE_DEBUG }, fn) {
  const glue = await loadRuntime();
  const pgFactory = new MigrationPg(pgConfigFromUrl(databaseUrl));
  const onLog = (line) => {
    if (debug) process.stderr.write(`[schema-engine] ${line}\n`);
  };
  try {
    const engine = await glue.SchemaEngine.new(
      { datamodels: undefined },
      onLog,
      bindMigrationAwareSqlAdapterFactory(pgFactory),
    );
    try {
      return await fn(engine);
    } finally {
      engine.free();
    }
  } finally {
    await pgFactory.disposeAll();
  }
}

/** The schema files in the shape the engine takes (`SchemasContainer`). */
export function readSchema(schemaPath) {
  return { files: [{ path: path.resolve(schemaPath), content: fs.readFileSync(schemaPath, 'utf8') }] };
}

/**
 * The migrations folder in the shape the engine takes (`MigrationList`), as Prisma's CLI builds it
 * (packages/migrate/src/utils/listMigrations.ts): directory names RELATIVE to baseDir, sorted, each with its
 * migration.sql, plus migration_lock.toml (a diff that starts from the migrations needs the lockfile).
 */
export function readMigrations(migrationsDir) {
  const baseDir = path.resolve(migrationsDir);
  const lockPath = path.join(baseDir, 'migration_lock.toml');
  const names = fs.existsSync(baseDir)
    ? fs
        .readdirSync(baseDir, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name)
        .sort()
    : [];
  return {
    baseDir,
    lockfile: { path: 'migration_lock.toml', content: fs.existsSync(lockPath) ? fs.readFileSync(lockPath, 'utf8') : null },
    shadowDbInitScript: '',
    migrationDirectories: names.map((name) => {
      const file = path.join(baseDir, name, 'migration.sql');
      return {
        path: name,
        migrationFile: {
          path: 'migration.sql',
          content: fs.existsSync(file)
            ? { tag: 'ok', value: fs.readFileSync(file, 'utf8') }
            : { tag: 'error', value: `missing ${path.relative(process.cwd(), file)}` },
        },
      };
    }),
  };
}
