// `balcony doctor`: is this gateway's setup sound? Configuration, PostgreSQL, migrations, the
// clocks, and the component link; each check OK or FAIL with what is wrong and how to fix it.
import type { Command } from "commander";
import { ConfigError, loadConfig, parseDuration, type Config } from "../config.js";
import { Auth } from "../http/auth.js";
import { CliError, describeUrl, EXIT, openCommandDatabase, run, type OpenDatabase } from "./common.js";
import type { DatabaseProbe } from "../db/health.js";
import type { Check } from "./doctor-checks.js";
import type { Output, Tone } from "./output.js";

const CONFIG_FIX = "see .env.example and README.md, \"Configuration\"";

/** The whole configuration, validated as the gateway validates it at start-up. */
function configCheck(): { check: Check; config: Config | null } {
  try {
    const config = loadConfig();
    new Auth(config.jwt, config.xmpp.domain); // as the gateway builds it at start-up
    const db = config.databaseUrl ? `DATABASE_URL ${describeUrl(config.databaseUrl)}` : `embedded PostgreSQL (DATA_DIR ${config.dataDir})`;
    const detail = `XMPP_DOMAIN ${config.xmpp.domain}, XMPP_SERVICE ${config.xmpp.service}, XMPP_LINK_MODE ${config.xmpp.linkMode}, ${db}, HTTP ${config.host}:${config.port}`;
    return { check: { name: "configuration", status: "ok", detail }, config };
  } catch (err) {
    const variable = err instanceof ConfigError ? err.variable : "JWT_PUBLIC_KEY";
    return { check: { name: "configuration", status: "fail", detail: (err as Error).message, fix: `set ${variable} correctly (${CONFIG_FIX})` }, config: null };
  }
}

const skip = (name: string, why: string): Check => ({ name, status: "skip", detail: why });

const TONE: Record<Check["status"], Tone> = { ok: "ok", fail: "fail", warn: "warn", skip: "skip" };

/** PostgreSQL, opened as every command opens it and probed; `opened` is left open for the checks after it. */
async function openAndProbe(config: Config, out: Output): Promise<{ check: Check; probe: DatabaseProbe | null; opened: OpenDatabase | null }> {
  const { databaseCheck } = await import("./doctor-checks.js");
  let opened: OpenDatabase;
  try {
    opened = await openCommandDatabase(config, out, { connect: false });
  } catch (err) {
    const [detail, fix] = err instanceof CliError ? [err.message, err.fix] : [`cannot start the embedded PostgreSQL: ${(err as Error).message}`, "set DATABASE_URL, or make DATA_DIR a folder the embedded PostgreSQL can use"];
    return { check: { name: "database", status: "fail", detail, ...(fix ? { fix } : {}) }, probe: null, opened: null };
  }
  return { ...(await databaseCheck(opened.db, opened.where)), opened };
}

async function runChecks(out: Output, opts: { url?: string; maxClockSkew: string }): Promise<Check[]> {
  let maxSkewMs: number;
  try {
    maxSkewMs = parseDuration("--max-clock-skew", opts.maxClockSkew);
  } catch (err) {
    throw new CliError("usage", (err as Error).message, undefined, EXIT.usage);
  }
  const checks: Check[] = [];
  // Each check says it starts and how it ended (stderr, for a person: the xmpp check may wait seconds for a timeout).
  const timed = async <T extends { check: Check }>(name: string, body: () => T | Promise<T>): Promise<T> => {
    const done = out.step(`checking ${name}`);
    const result = await body();
    done(TONE[result.check.status], result.check.status);
    checks.push(result.check);
    return result;
  };
  const { config } = await timed("configuration", configCheck);
  const { clockCheck, defaultGatewayUrl, migrationsCheck, xmppCheck } = await import("./doctor-checks.js");
  if (!config) return [...checks, ...["database", "migrations", "clock", "xmpp"].map((n) => skip(n, "needs a valid configuration"))];
  const database = await timed("database", () => openAndProbe(config, out));
  try {
    const probe = database.probe;
    const db = probe && database.opened ? database.opened.db : null;
    await timed("migrations", async () => ({
      check: db
        ? await migrationsCheck(db).catch((err: Error): Check => ({ name: "migrations", status: "fail", detail: `cannot read the migrations: ${err.message}`, fix: "check that prisma/migrations ships with this installation and that the database user may read _prisma_migrations" }))
        : skip("migrations", "needs the database"),
    }));
    await timed("clock", () => ({ check: probe ? clockCheck(probe, maxSkewMs) : skip("clock", "needs the database") }));
    await timed("xmpp", async () => ({ check: await xmppCheck(config, db, opts.url ?? defaultGatewayUrl(config)) }));
  } finally {
    await database.opened?.close();
  }
  return checks;
}

const CHECKS_HELP = `
Checks:
  configuration  every variable, validated as the gateway does at start-up
  database       PostgreSQL answers (DATABASE_URL, or the embedded one under
                 DATA_DIR)
  migrations     every migration is applied (the pending ones are listed)
  clock          this host's clock against the database's (SELECT now())
  xmpp           the component link. Prosody accepts one connection per
                 component, so doctor never connects while a gateway runs:
                 if one answers at --url (default http://HOST:PORT), it reports
                 that gateway's /readyz; if an instance holds the link lease in
                 the database, that instance's link state. Only when no gateway
                 runs does it connect as the gateway would (XMPP_SERVICE,
                 XMPP_DOMAIN, XMPP_SECRET) and ping its own domain through the
                 XMPP server (never without the database: that is where a
                 gateway elsewhere shows). With XMPP_LINK_MODE=all (no lease),
                 pass --url of a running instance.`;

export function doctorCommand(program: Command): void {
  program
    .command("doctor")
    .summary("check configuration, database, migrations, clock and component link")
    .description(
      "Checks this gateway's setup and prints, for each check, OK or FAIL with what is wrong and how to fix it. " +
        "Exits 2 if the configuration check fails (the other checks are then skipped), 1 if another check fails " +
          "(WARN and SKIP do not fail), 0 otherwise. Run it on the gateway's host, with its environment.",
    )
    .addHelpText("after", CHECKS_HELP)
    .option("--url <url>", "base URL of a running gateway to ask (default: http://HOST:PORT)")
    .option("--max-clock-skew <duration>", "the clock difference allowed (e.g. 500ms, 2s)", "1s")
    .action((opts: { url?: string; maxClockSkew: string }, cmd: Command) =>
      run(cmd, async (out) => {
        const checks = await runChecks(out, opts);
        const failed = checks.filter((c) => c.status === "fail");
        if (out.json) out.data({ ok: failed.length === 0, checks });
        else {
          out.table(
            ["CHECK", "STATUS", "DETAIL"],
            checks.map((c) => [c.name, { text: c.status.toUpperCase(), tone: TONE[c.status] }, c.fix ? `${c.detail}\nfix: ${c.fix}` : c.detail]),
          );
          out.line();
          out.line(failed.length === 0 ? out.paint("ok", "all checks passed") : out.paint("fail", `${failed.length} check${failed.length === 1 ? "" : "s"} failed: ${failed.map((c) => c.name).join(", ")}`));
        }
        if (failed.length === 0) return EXIT.ok;
        // A bad configuration exits 2 here as in every other command (README, "Operator CLI").
        return failed.some((c) => c.name === "configuration") ? EXIT.usage : EXIT.failed;
      }),
    );
}
