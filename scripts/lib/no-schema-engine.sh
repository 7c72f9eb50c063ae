#!/bin/sh
# Stand-in for Prisma's native schema-engine binary, which cannot be downloaded here. The Prisma CLI refuses to start
# any command unless PRISMA_SCHEMA_ENGINE_BINARY names an existing file; `prisma generate` never runs it.
# Anything that does run it fails loudly instead of pretending to succeed.
echo "no native Prisma schema engine on this machine: use node scripts/migrate.mjs (wasm engine)" >&2
exit 1
