#!/usr/bin/env bash
# Generates the Prisma client (src/db/generated), for the build and for CI. Prisma's CLI needs
# its schema engine: it downloads it, or, where it cannot (an offline machine), takes the binary
# named by PRISMA_SCHEMA_ENGINE_BINARY; the testbed's stand-in (../shared/prisma-offline) serves
# when nothing is named.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PRISMA_SCHEMA_ENGINE_BINARY:-}" ] && [ -f ../shared/prisma-offline/install.sh ]; then
  PRISMA_SCHEMA_ENGINE_BINARY="$(bash ../shared/prisma-offline/install.sh)"
  export PRISMA_SCHEMA_ENGINE_BINARY
fi
exec npx prisma generate
