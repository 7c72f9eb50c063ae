// Usage: node scripts/prisma-generate.mjs [--force]
// Generates src/generated/prisma from prisma/schema.prisma when it is older than the schema (or always with --force).
// Quiet on success. Works offline: see scripts/lib/prisma-generate.mjs.
import { prismaGenerate } from './lib/prisma-generate.mjs';

try {
  await prismaGenerate({ force: process.argv.includes('--force') });
} catch (error) {
  console.error(error.message);
  process.exitCode = 1;
}
