// The architecture rules in .dependency-cruiser.cjs (run by `npm run lint`), tested on fixture trees:
// test/fixtures/layering is a clean tree that must pass, test/fixtures/layering-bad holds one file
// per forbidden case and must produce exactly the listed violations, so that removing or
// weakening a rule (or the type-only detection, or the visibility of src/db/generated) fails here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cruise, type ICruiseResult, type IViolation } from "dependency-cruiser";
import extractDepcruiseOptions from "dependency-cruiser/config-utl/extract-depcruise-options";
import extractTSConfig from "dependency-cruiser/config-utl/extract-ts-config";

const CONFIG = "./.dependency-cruiser.cjs"; // relative to the repo root (scripts/test.sh runs there)
const GOOD = "test/fixtures/layering";
const BAD = "test/fixtures/layering-bad";

/** Cruises `roots` exactly as `depcruise <roots> --config .dependency-cruiser.cjs` does. */
async function depcruise(roots: string[]): Promise<ICruiseResult> {
  const options = await extractDepcruiseOptions(CONFIG);
  const tsConfig = extractTSConfig(options.tsConfig?.fileName ?? "tsconfig.json");
  const { output } = await cruise(roots, options, {}, { tsConfig });
  assert.equal(typeof output, "object", "the cruise returns a result object (no outputType set)");
  return output as ICruiseResult;
}

interface Found {
  rule: string;
  from: string;
  to: string;
}

/** A package's name for a path in node_modules, the path inside the tree otherwise. */
function shorten(path: string, root: string): string {
  const pkg = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
  if (pkg) return pkg[1]!;
  return path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
}

/** Violations as sorted {rule, from, to}; a cycle becomes its members, sorted, from the first. */
function found(result: ICruiseResult, root: string): Found[] {
  return result.summary.violations
    .map((v: IViolation) => {
      if (v.cycle) {
        const members = [...new Set([v.from, ...v.cycle.map((c) => c.name)])].map((p) => shorten(p, root)).sort();
        return { rule: v.rule.name, from: members[0]!, to: members.slice(1).join(" -> ") };
      }
      return { rule: v.rule.name, from: shorten(v.from, root), to: shorten(v.to, root) };
    })
    .sort((a, b) => `${a.rule} ${a.from} ${a.to}`.localeCompare(`${b.rule} ${b.from} ${b.to}`));
}

function edges(result: ICruiseResult, root: string): string[] {
  return result.modules
    .filter((m) => m.source.startsWith(`${root}/`))
    .flatMap((m) => m.dependencies.map((d) => `${shorten(m.source, root)} -> ${shorten(d.resolved, root)}`))
    .sort();
}

test("every rule is an error and says why", async () => {
  const options = await extractDepcruiseOptions(CONFIG);
  const rules = options.ruleSet?.forbidden ?? [];
  assert.ok(rules.length >= 10, `expected the layering rule set, found ${rules.length} rules`);
  for (const rule of rules) {
    assert.equal(rule.severity, "error", `${rule.name} must be an error, or lint would not fail`);
    assert.match(rule.comment ?? "", /\S.{10,}/, `${rule.name} needs a one-line comment saying why`);
  }
  assert.equal(options.tsPreCompilationDeps, true, "type-only imports must count");
});

test("the clean fixture tree passes: one allowed import per layer", async () => {
  const result = await depcruise([GOOD]);
  // Not vacuous: the allowed edges were all seen and resolved.
  assert.deepEqual(edges(result, GOOD), [
    "src/db/accounts.ts -> pg",
    "src/db/accounts.ts -> src/domain/jid.ts",
    "src/domain/events.ts -> @sinclair/typebox",
    "src/domain/events.ts -> url",
    "src/domain/jid.ts -> net",
    "src/domain/jid.ts -> src/domain/text.ts",
    "src/http/routes.ts -> src/services/accounts.ts",
    "src/services/accounts.ts -> src/db/accounts.ts",
    "src/webhook/client.ts -> src/services/accounts.ts",
    "src/webhook/client.ts -> undici",
    "src/xmpp/inbound.ts -> @xmpp/xml",
    "src/xmpp/inbound.ts -> src/services/accounts.ts",
  ]);
  assert.deepEqual(found(result, GOOD), []);
  assert.equal(result.summary.error, 0);
});

test("the bad fixture tree fails: exactly the expected violation for each forbidden case", async () => {
  const result = await depcruise([BAD]);
  const expected: Found[] = [
    { rule: "config-only-domain", from: "src/config.ts", to: "src/services/accounts.ts" },
    { rule: "db-only-domain", from: "src/db/uses-services.ts", to: "src/services/accounts.ts" },
    { rule: "domain-is-pure", from: "src/domain/uses-crypto.ts", to: "crypto" },
    { rule: "domain-is-pure", from: "src/domain/uses-db.ts", to: "src/db/accounts.ts" },
    { rule: "fastify-only-in-http", from: "src/services/uses-fastify.ts", to: "fastify" },
    { rule: "http-not-to-db", from: "src/http/uses-db.ts", to: "src/db/accounts.ts" },
    { rule: "http-not-to-xmpp", from: "src/http/uses-xmpp.ts", to: "src/xmpp/inbound.ts" },
    { rule: "http-only-inner-layers", from: "src/http/uses-gateway.ts", to: "src/gateway.ts" },
    { rule: "no-circular", from: "src/services/cycle-a.ts", to: "src/services/cycle-b.ts" },
    { rule: "no-layer-to-webhook", from: "src/services/uses-webhook.ts", to: "src/webhook/client.ts" },
    { rule: "not-to-unresolvable", from: "src/http/unresolvable.ts", to: "../db/moved-away.js" },
    { rule: "only-db-touches-the-database", from: "src/http/uses-pg.ts", to: "pg" },
    { rule: "only-db-touches-the-database", from: "src/services/uses-generated.ts", to: "src/db/generated/client.ts" },
    { rule: "only-webhook-touches-undici", from: "src/services/uses-undici.ts", to: "undici" },
    { rule: "only-xmpp-touches-xmpp-lib", from: "src/services/uses-xmpp-xml.ts", to: "@xmpp/xml" },
    { rule: "services-not-to-http", from: "src/services/type-only-http.ts", to: "src/http/routes.ts" },
    { rule: "services-not-to-http", from: "src/services/uses-http.ts", to: "src/http/routes.ts" },
    { rule: "services-not-to-xmpp", from: "src/services/uses-xmpp.ts", to: "src/xmpp/inbound.ts" },
    { rule: "services-only-inner-layers", from: "src/services/uses-config.ts", to: "src/config.ts" },
    { rule: "services-only-inner-layers", from: "src/services/uses-webhook.ts", to: "src/webhook/client.ts" },
    { rule: "src-not-to-tooling", from: "src/http/uses-scripts.ts", to: "scripts/uses-test.ts" },
    { rule: "tooling-not-to-test", from: "scripts/uses-test.ts", to: "test/helper.ts" },
    { rule: "webhook-only-inner-layers", from: "src/webhook/uses-config.ts", to: "src/config.ts" },
    { rule: "xmpp-not-to-db", from: "src/xmpp/uses-db.ts", to: "src/db/accounts.ts" },
    { rule: "xmpp-not-to-http", from: "src/xmpp/uses-http.ts", to: "src/http/routes.ts" },
    { rule: "xmpp-only-inner-layers", from: "src/xmpp/uses-config.ts", to: "src/config.ts" },
  ];
  // An empty (or shorter) list fails this comparison: every case must be caught, nothing else.
  assert.deepEqual(found(result, BAD), expected);
  assert.equal(result.summary.error, expected.length);

  // The type-only cases are really type-only imports (so they prove type-only imports count).
  const typeOnly = result.summary.violations
    .filter((v) => v.dependencyTypes?.includes("type-only"))
    .map((v) => shorten(v.from, BAD))
    .sort();
  assert.deepEqual(typeOnly, ["src/services/type-only-http.ts", "src/services/uses-fastify.ts", "src/services/uses-generated.ts"]);

  // Every rule of the config has its case here, so a new rule comes with a fixture.
  const rules = (await extractDepcruiseOptions(CONFIG)).ruleSet?.forbidden?.map((r) => r.name).sort();
  assert.deepEqual([...new Set(expected.map((v) => v.rule))].sort(), rules);
});

test("the real tree (src, scripts, bench) has no violations", async () => {
  const result = await depcruise(["src", "scripts", "bench"]);
  const violations = found(result, ".").map((v) => `${v.rule}: ${v.from} -> ${v.to}`);
  assert.deepEqual(violations, [], `${violations.length} layering violations:\n${violations.join("\n")}`);
});
