// Prisma CLI config for `prisma migrate deploy` when a native schema engine is present (scripts/lib/migrations.mjs).
// Prisma 7 reads the datasource URL from a config file, not from schema.prisma; paths here are relative to this file.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: '../../prisma/schema.prisma',
  migrations: { path: '../../prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL },
});
