// prisma/migrations must produce exactly what prisma/schema.prisma describes, and applying them must behave like
// `prisma migrate deploy`. The migrate tool is ESM (scripts/*.mjs) and jest's CommonJS runtime cannot import it, so
// it runs as the child process a developer would run.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';

const ROOT = path.resolve(__dirname, '../..');
const MIGRATIONS_DIR = path.join(ROOT, 'prisma/migrations');

function databaseUrl(): URL {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run the tests with `npm test` (scripts/test.mjs)');
  return new URL(url);
}

function withDatabase(name: string): string {
  const url = databaseUrl();
  url.pathname = `/${name}`;
  return url.toString();
}

function migrate(args: string[], url = databaseUrl().toString()) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'scripts/migrate.mjs'), ...args],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: url }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function query<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

const shadowDatabases = async () =>
  (await query<{ datname: string }>(withDatabase('postgres'), `SELECT datname FROM pg_database WHERE datname LIKE 'prisma_migrate_shadow_db_%'`)).map(
    (row) => row.datname,
  );

const localMigrations = () =>
  fs
    .readdirSync(MIGRATIONS_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();

describe('prisma migrations', () => {
  // Each check starts the wasm schema engine and a shadow database (4-5 s alone, more on a busy machine). The
  // integration project's testTimeout in jest.config.js is not applied (jest reads testTimeout globally only).
  jest.setTimeout(60_000);
  it('match prisma/schema.prisma (else: npm run migrate:create -- <name>), leaving no shadow database behind', async () => {
    const before = await shadowDatabases();
    const out = await migrate(['diff-check']);
    expect({ code: out.code, output: out.stdout + out.stderr }).toEqual({ code: 0, output: expect.stringContaining('agree') });
    expect(await shadowDatabases()).toEqual(before);
  });

  it('the check fails, with the SQL needed, when the schema has something the migrations lack', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loraplane-schema-'));
    try {
      const schema = fs
        .readFileSync(path.join(ROOT, 'prisma/schema.prisma'), 'utf8')
        .replace(/^model Project \{$/m, 'model Project {\n  migrationCheckProbe String?');
      fs.writeFileSync(path.join(dir, 'schema.prisma'), schema);
      const out = await migrate(['diff-check', '--schema', path.join(dir, 'schema.prisma')]);
      expect(out.code).toBe(1);
      expect(out.stdout).toContain('ALTER TABLE "Project" ADD COLUMN');
      expect(out.stdout).toContain('"migrationCheckProbe" TEXT');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('deploy on a new database', () => {
    const url = withDatabase(`${databaseUrl().pathname.slice(1)}_deploy_${process.pid}`);
    const dropDatabase = () =>
      query(withDatabase('postgres'), `DROP DATABASE IF EXISTS "${new URL(url).pathname.slice(1)}" WITH (FORCE)`);

    beforeAll(dropDatabase);
    afterAll(dropDatabase);

    it('creates the database, applies every migration once, and a second deploy applies nothing', async () => {
      const first = await migrate(['deploy'], url);
      expect(first.code).toBe(0);
      expect(first.stdout).toContain(`applied: ${localMigrations().join(', ')}`);

      const second = await migrate(['deploy'], url);
      expect(second.code).toBe(0);
      expect(second.stdout).toContain('applied: none');

      const status = await migrate(['status'], url);
      expect(status.stdout).toContain(`${localMigrations().length} applied, 0 pending`);
    });

    it('records each migration in _prisma_migrations as Prisma does: checksum = sha256(migration.sql)', async () => {
      const rows = await query<{ migration_name: string; checksum: string; finished_at: Date | null; applied_steps_count: number }>(
        url,
        'SELECT migration_name, checksum, finished_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name',
      );
      expect(rows.map((row) => row.migration_name)).toEqual(localMigrations());
      for (const row of rows) {
        const sql = fs.readFileSync(path.join(MIGRATIONS_DIR, row.migration_name, 'migration.sql'));
        expect(row.checksum).toBe(createHash('sha256').update(sql).digest('hex'));
        expect(row.finished_at).toBeInstanceOf(Date);
        expect(row.applied_steps_count).toBe(1);
      }
    });
  });
});
