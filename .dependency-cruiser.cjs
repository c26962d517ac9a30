// @ts-check
/* global module */
// Architecture rules for Balcony, enforced by `npm run lint` (depcruise src scripts bench).
//
// Layers (inner to outer):  domain  <-  db  <-  services  <-  xmpp / http / webhook  <-  wiring (src/server.ts,
// src/gateway.ts and any other file at the root of src/: unconstrained except by the package and cycle rules).
// One root file is not wiring: src/cadence.ts, the process's clock for periodic work, which db and services use too.
// test/fixtures/layering* hold deliberately bad trees: `npm run lint` never cruises them (its roots are
// src, scripts and bench), only test/lint/layering.test.ts does.
//
// Every path regex is written so it matches both the real tree (`src/services/x.ts`) and a fixture
// tree (`test/fixtures/layering-bad/src/services/x.ts`), which is how test/lint/layering.test.ts
// proves the rules can fail. `from` captures the tree's root as group 1 (empty for the real tree)
// and `to` refers back to it as `$1`, so a rule never matches a file of another tree, nor
// `node_modules/<pkg>/src/...`. (`(|.*/)` rather than `(.*/)?`: depcruise rejects nested quantifiers.)
// Type-only imports count: options.tsPreCompilationDeps is true and no rule exempts "type-only".

/** `from` path of files under `src/<sub>` of any tree; group 1 is the tree's root.
 * @param {string} sub */
const from = (sub) => `^(|.*/)src/${sub}`;
/** `to` path of files under `src/<sub>` of the same tree as the `from` side.
 * @param {string} sub */
const to = (sub) => `^$1src/${sub}`;
/** a package in node_modules (including its @types twin), by name regex.
 * @param {string} names */
const pkg = (names) => `(^|/)node_modules/(@types/)?(${names})(/|$)`;

const XMPP_LIB = pkg("@xmpp/[^/]+");
const DB_DRIVER = pkg("@prisma/[^/]+|prisma|pg|pg-[^/]+");
const FASTIFY = pkg("fastify|@fastify/[^/]+|fastify-[^/]+");

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    // ---- whole-tree rules
    {
      name: "no-circular",
      comment: "a cycle in src/ means two modules are really one: split out the shared part or invert one edge",
      severity: "error",
      from: { path: "^(|.*/)src/" },
      to: { circular: true },
    },
    {
      name: "not-to-unresolvable",
      comment: "an import that does not resolve escapes every rule below: fix the path (or the moved file)",
      severity: "error",
      from: { path: "^(|.*/)(src|scripts|bench)/" },
      to: { couldNotResolve: true },
    },
    {
      name: "src-not-to-tooling",
      comment: "shipped code must not depend on tests, scripts or benchmarks (they are not in dist/)",
      severity: "error",
      from: { path: "^(|.*/)src/" },
      to: { path: "^$1(test|scripts|bench)/" },
    },
    {
      name: "tooling-not-to-test",
      comment: "scripts and benchmarks must not reuse test helpers: move what they share into src/ or their own folder",
      severity: "error",
      from: { path: "^(|.*/)(scripts|bench)/" },
      to: { path: "^$1test/" },
    },

    // ---- packages owned by one adapter
    {
      name: "only-db-touches-the-database",
      comment: "all SQL and Prisma live in src/db: other layers call repositories, never @prisma/*, pg or the generated client",
      severity: "error",
      from: { path: "^(|.*/)src/", pathNot: from("db/") },
      to: { path: [DB_DRIVER, to("db/generated/")] },
    },
    {
      name: "only-xmpp-touches-xmpp-lib",
      comment: "only the XMPP adapter (src/xmpp) builds or parses stanzas: other layers hand it effects as data",
      severity: "error",
      from: { path: "^(|.*/)src/", pathNot: from("xmpp/") },
      to: { path: XMPP_LIB },
    },
    {
      name: "fastify-only-in-http",
      comment: "Fastify is the HTTP adapter's framework: domain, db, services and xmpp stay transport-agnostic",
      severity: "error",
      from: { path: from("(domain|db|services|xmpp)/") },
      to: { path: FASTIFY },
    },

    // ---- domain
    {
      name: "domain-is-pure",
      comment: "domain is pure rules and contracts: it imports only domain, typebox schemas, ipaddr.js (pure IP parsing) and node:url/node:net, no I/O",
      severity: "error",
      from: { path: from("domain/") },
      to: {
        pathNot: [to("domain/"), pkg("@sinclair/typebox"), pkg("ipaddr\\.js"), "^(node:)?(url|net)$"],
      },
    },

    // ---- db
    {
      name: "db-only-domain",
      comment: "repositories sit below the use cases: src/db may import only src/domain, src/db and the process's clock (src/cadence.ts)",
      severity: "error",
      from: { path: from("db/") },
      to: { path: "^$1src/", pathNot: [to("domain/"), to("db/"), to("cadence\\.ts$")] },
    },

    // ---- services
    {
      name: "services-not-to-http",
      comment: "use cases are transport-agnostic: HTTP calls services, services never call HTTP",
      severity: "error",
      from: { path: from("services/") },
      to: { path: to("http/") },
    },
    {
      name: "services-not-to-xmpp",
      comment: "services never build XML: they hand effects as data to an outbound port that src/xmpp implements",
      severity: "error",
      from: { path: from("services/") },
      to: { path: to("xmpp/") },
    },
    {
      name: "services-only-inner-layers",
      comment: "use cases depend only on domain, db repositories, other services and the process's clock (src/cadence.ts), never on config or wiring",
      severity: "error",
      from: { path: from("services/") },
      to: { path: "^$1src/", pathNot: [to("(domain|db|services|http|xmpp)/"), to("cadence\\.ts$")] },
    },

    // ---- xmpp
    {
      name: "xmpp-not-to-http",
      comment: "the two adapters are siblings: xmpp and http meet only in services and the wiring",
      severity: "error",
      from: { path: from("xmpp/") },
      to: { path: to("http/") },
    },
    {
      name: "xmpp-not-to-db",
      comment: "the XMPP adapter reaches storage through services (use cases), never through repositories",
      severity: "error",
      from: { path: from("xmpp/") },
      to: { path: to("db/"), pathNot: to("db/generated/") },
    },
    {
      name: "xmpp-only-inner-layers",
      comment: "the XMPP adapter depends only on domain, services and itself; configuration is injected by the wiring",
      severity: "error",
      from: { path: from("xmpp/") },
      to: { path: "^$1src/", pathNot: [to("(domain|services|xmpp|http|db)/")] },
    },

    // ---- http
    {
      name: "http-not-to-db",
      comment: "routes call use cases in src/services, never repositories or SQL",
      severity: "error",
      from: { path: from("http/") },
      to: { path: to("db/"), pathNot: to("db/generated/") },
    },
    {
      name: "http-not-to-xmpp",
      comment: "the two adapters are siblings: http reaches XMPP only through services",
      severity: "error",
      from: { path: from("http/") },
      to: { path: to("xmpp/") },
    },
    {
      name: "http-only-inner-layers",
      comment: "the HTTP adapter depends only on domain, services, itself and src/config.ts, never on the wiring",
      severity: "error",
      from: { path: from("http/") },
      to: { path: "^$1src/", pathNot: [to("(domain|services|http|db|xmpp)/"), to("config\\.ts$")] },
    },

    // ---- webhook (the outbound HTTP adapter)
    {
      name: "only-webhook-touches-undici",
      comment: "outbound HTTP (undici, with the guarded DNS lookup) belongs to the webhook adapter: other layers call the WebhookPort",
      severity: "error",
      from: { path: "^(|.*/)src/", pathNot: from("webhook/") },
      to: { path: pkg("undici") },
    },
    {
      name: "webhook-only-inner-layers",
      comment: "the webhook adapter depends only on domain, the ports it implements in services, and itself; configuration is injected by the wiring",
      severity: "error",
      from: { path: from("webhook/") },
      to: { path: "^$1src/", pathNot: [to("(domain|services|webhook)/")] },
    },
    {
      name: "no-layer-to-webhook",
      comment: "only the wiring builds the webhook adapter: services reach it through WebhookPort",
      severity: "error",
      from: { path: from("(domain|db|services|xmpp|http)/") },
      to: { path: to("webhook/") },
    },

    // ---- config
    {
      name: "config-only-domain",
      comment: "configuration is read before anything is built: src/config.ts may use domain rules only",
      severity: "error",
      from: { path: from("config\\.ts$") },
      to: { path: "^$1src/", pathNot: [to("domain/")] },
    },
  ],
  options: {
    // src/db/generated (the Prisma client) is not cruised into but stays visible as a leaf: with
    // `exclude` dependency-cruiser would drop the edges *to* it too, and only-db-touches-the-database
    // could never fire for `import type { Prisma } from "../db/generated/client.js"` outside src/db.
    doNotFollow: { path: ["node_modules", "(^|/)src/db/generated/"] },
    // Our build output only: "(^|/)dist/" also hid every package whose entry is in its own dist/.
    exclude: { path: ["^dist/"] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types", "typings"],
    },
  },
};
