// The checks of `balcony doctor`, each a verdict with what is wrong and how to fix it.
import type { Config } from "../config.js";
import type { Database } from "../db/client.js";
import { probeDatabase, type DatabaseProbe } from "../db/health.js";
import { holderLinkState } from "../db/lease.js";
import { migrationStatus } from "../db/migrate.js";
import { probeComponent, type ProbeFailure } from "../xmpp/probe.js";

export interface Check {
  name: string;
  status: "ok" | "fail" | "warn" | "skip";
  detail: string;
  fix?: string;
}

const ms = (n: number) => `${n < 10 ? n.toFixed(1) : Math.round(n)} ms`;

/** PostgreSQL answers: its version, and its clock for the clock check. */
export async function databaseCheck(db: Database, where: string): Promise<{ check: Check; probe: DatabaseProbe | null }> {
  try {
    const probe = await probeDatabase(db.pool);
    return { check: { name: "database", status: "ok", detail: `PostgreSQL ${probe.version.split(" ")[0]} at ${where}, round trip ${ms(probe.rttMs)}` }, probe };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const message = e.message || (err instanceof AggregateError ? err.errors.map((x: Error) => x.message).join("; ") : String(err));
    const fixes: Record<string, string> = {
      ECONNREFUSED: "start PostgreSQL, or correct the host and port in DATABASE_URL",
      ENOTFOUND: "correct the host name in DATABASE_URL",
      EAI_AGAIN: "correct the host name in DATABASE_URL (or the DNS settings)",
      "28P01": "correct the user name and password in DATABASE_URL",
      "28000": "allow this user and host in PostgreSQL's pg_hba.conf, or correct the user in DATABASE_URL",
      "3D000": "create the database (createdb <name>, or CREATE DATABASE <name>), or correct its name in DATABASE_URL",
    };
    const fix = fixes[e.code ?? ""] ?? (/timeout/i.test(message) ? "check that the host and port in DATABASE_URL are reachable from here (network, firewall)" : "check DATABASE_URL");
    return { check: { name: "database", status: "fail", detail: `cannot use ${where}: ${message}${e.code ? ` (${e.code})` : ""}`, fix }, probe: null };
  }
}

export async function migrationsCheck(db: Database): Promise<Check> {
  const name = "migrations";
  const s = await migrationStatus(db.pool);
  const total = s.applied.length + s.pending.length + s.changed.length;
  if (s.changed.length > 0) {
    return { name, status: "fail", detail: `changed after they were applied: ${s.changed.join(", ")}`, fix: `restore prisma/migrations/<name>/migration.sql as it was applied (a schema change is a new migration); the gateway refuses to start until then` };
  }
  if (s.pending.length > 0) {
    return { name, status: "fail", detail: `${s.pending.length} of ${total} pending:\n${s.pending.join("\n")}`, fix: "run `balcony migrate` (the gateway also applies them when it starts)" };
  }
  if (s.unknown.length > 0) {
    return { name, status: "warn", detail: `all ${total} applied, and ${s.unknown.length} this version does not ship: ${s.unknown.join(", ")}`, fix: "the database was migrated by a newer Balcony: run that version" };
  }
  return { name, status: "ok", detail: `all ${total} applied` };
}

export function clockCheck(probe: DatabaseProbe, maxSkewMs: number): Check {
  const skew = probe.nowMs - probe.localMs;
  const margin = probe.rttMs / 2;
  const detail = `the database's clock is ${ms(Math.abs(skew))} ${skew >= 0 ? "ahead of" : "behind"} this host's (±${ms(margin)}; allowed ${ms(maxSkewMs)})`;
  if (Math.abs(skew) - margin <= maxSkewMs) return { name: "clock", status: "ok", detail };
  return {
    name: "clock",
    status: "fail",
    detail,
    fix: "synchronise the clocks of this host and the database's host (NTP: chrony or systemd-timesyncd); the gateway compares times it computes (token expiry, retention, session grace) with times PostgreSQL records",
  };
}

/** Where a running gateway would answer, from HOST and PORT (null: PORT 0, nothing to ask). */
export function defaultGatewayUrl(config: Config): string | null {
  if (config.port === 0) return null;
  const host = config.host === "0.0.0.0" ? "127.0.0.1" : config.host === "::" ? "::1" : config.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${config.port}`;
}

async function readyz(url: string): Promise<{ database?: string; xmpp: string } | null> {
  try {
    const res = await fetch(new URL("/readyz", url), { signal: AbortSignal.timeout(3000) });
    const body = (await res.json()) as { database?: unknown; xmpp?: unknown };
    return typeof body?.xmpp === "string" ? { xmpp: body.xmpp, ...(typeof body.database === "string" ? { database: body.database } : {}) } : null;
  } catch {
    return null; // nothing there, or not a Balcony
  }
}

const COMPONENT_PORTS = "Prosody: component_ports, 5347 by default; ejabberd: its ejabberd_service listener";

/** What a failed component probe means, and what to change. */
export function probeFix(failure: ProbeFailure, xmpp: Pick<Config["xmpp"], "service" | "domain">, url: string | null): { detail: string; fix: string } {
  const { service, domain } = xmpp;
  const settings = "XMPP_SERVICE, XMPP_DOMAIN and XMPP_SECRET";
  switch (failure) {
    case "refused":
      return { detail: `nothing accepts connections at ${service}`, fix: `start the XMPP server, or set XMPP_SERVICE to its component port (${COMPONENT_PORTS})` };
    case "unreachable":
      return { detail: `${service} cannot be reached`, fix: "correct the host in XMPP_SERVICE" };
    case "not-authorized":
      return {
        detail: `the XMPP server refused the handshake of component ${domain}: XMPP_SECRET is not its secret`,
        fix: `set XMPP_SECRET to the component's secret on the XMPP server (Prosody: component_secret under Component "${domain}"; ejabberd: the password of ${domain} in the ejabberd_service listener's hosts)`,
      };
    case "host-unknown":
      // Prosody answers so at its client port as well ("does not serve"), where the component is no help.
      return {
        detail: `the XMPP server at ${service} does not serve ${domain} as a component`,
        fix: `if ${service} is the client port (5222), set XMPP_SERVICE to the component port (${COMPONENT_PORTS}); else declare Component "${domain}" on the XMPP server (with a component_secret), or set XMPP_DOMAIN to the component's name there`,
      };
    case "not-a-component-port":
      return { detail: `${service} does not speak the component protocol (XEP-0114): a client or server-to-server port`, fix: `set XMPP_SERVICE to the XMPP server's component port (${COMPONENT_PORTS})` };
    case "conflict":
      return {
        detail: `another connection already holds component ${domain}, though no gateway answered${url ? ` at ${url}` : ""} nor holds the link lease in this database`,
        fix: "if it is a Balcony instance, pass --url <its base URL> (or use its DATABASE_URL) so doctor asks it; otherwise stop the program holding the component",
      };
    case "timeout":
      return { detail: `no answer from ${service}`, fix: "check that XMPP_SERVICE is the XMPP server's component port (not the client port 5222) and that nothing drops the traffic" };
    default:
      return { detail: `the component connection to ${service} failed`, fix: `check ${settings} against the XMPP server's component configuration` };
  }
}

/**
 * The component link. A gateway that runs holds it, and Prosody accepts one connection per
 * component: so when a gateway answers at `url`, or some instance holds the link lease in the
 * database, doctor reports what that gateway says of its link (its /readyz, or the lease holder's
 * state) and does not connect. Only when none runs does it connect itself, as the gateway would,
 * and make a round trip through the XMPP server; and not at all without the database (`db` null),
 * which is where it would learn of a gateway elsewhere.
 */
export async function xmppCheck(config: Config, db: Database | null, url: string | null): Promise<Check> {
  const name = "xmpp";
  const linkFix = `the gateway's log says why ("component link error"); check XMPP_SERVICE, XMPP_DOMAIN and XMPP_SECRET against the XMPP server's component configuration (with every gateway stopped, doctor tests them with a connection of its own)`;
  const ready = url ? await readyz(url) : null;
  if (ready && url) {
    if (ready.xmpp === "up") return { name, status: "ok", detail: `the gateway at ${url} holds the component link (readyz: xmpp up); doctor does not connect while a gateway runs` };
    if (ready.xmpp === "standby") return { name, status: "ok", detail: `the gateway at ${url} is a standby and the instance holding the component link reports it up (readyz: xmpp standby)` };
    return { name, status: "fail", detail: `the gateway at ${url} reports the component link down (readyz: xmpp ${ready.xmpp})`, fix: linkFix };
  }
  // Without the database doctor cannot see a gateway that holds the link elsewhere, and must not take it from one.
  if (!db) return { name, status: "skip", detail: `needs the database (no gateway answered${url ? ` at ${url}` : ""}; whether one holds the component link elsewhere is in the database)` };
  const holder = await holderLinkState(db.pool).catch(() => "none" as const);
  if (holder === "up") return { name, status: "ok", detail: `a gateway instance${url ? ` (not at ${url})` : ""} holds the component link lease and reports the link up; doctor does not connect while a gateway runs` };
  if (holder === "down") return { name, status: "fail", detail: `a gateway instance${url ? ` (not at ${url})` : ""} holds the component link lease but reports the link down`, fix: `${linkFix}; pass --url <its base URL> to ask it` };
  const probe = await probeComponent({ service: config.xmpp.service, domain: config.xmpp.domain, secret: config.xmpp.secret });
  if (probe.ok) {
    return { name, status: "ok", detail: `no gateway running: connected to ${config.xmpp.service} as ${config.xmpp.domain} (handshake ${ms(probe.handshakeMs)}), ping round trip through the XMPP server ${ms(probe.roundTripMs)}` };
  }
  const { detail, fix } = probeFix(probe.failure, config.xmpp, url);
  return { name, status: "fail", detail: `${detail}: ${probe.message}`, fix };
}
