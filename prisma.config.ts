import { defineConfig } from "prisma/config";

// Used by the Prisma CLI only (generate, migrate dev). The service applies migrations itself
// at start-up (src/db/migrate.ts), so it needs no CLI at run time.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: {
    url: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/balcony_dev",
    // Where `migrate diff --from-migrations` (and `migrate dev`) replay the migrations: an empty
    // database of the caller's (test/db/schema-drift.test.ts); unset, the engine makes a temporary one.
    shadowDatabaseUrl: process.env.SHADOW_DATABASE_URL,
  },
});
