// The message benchmark's report: rows (ceiling, peer, Balcony, batch) per XMPP server, the
// targets of issue 10 checked against them, and the table that prints both.
import type { ProfileSummary } from "../cpuprofile.js";
import { GROUPS, formatCpu, formatSleeps, formatWaits } from "./cpu.js";
import type { Measured } from "./measure.js";
import { fmtInt, fmtMs, fmtPct, fmtRatio, markdownTable } from "./util.js";

export type ServerKind = "prosody" | "ejabberd";
export type RowKey = "ceiling" | "peer" | "balcony" | "batch";

export interface Row {
  key: RowKey;
  label: string;
  /** measured here; reference: figures quoted from elsewhere (see note); not-available: see note. */
  status: "measured" | "reference" | "not-available";
  note?: string | undefined;
  msgsPerSec: number | null;
  /** msgsPerSec / the ceiling's, same server, same run. */
  ratio: number | null;
  /** Fixed-rate run: start → arrival at the XMPP user. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Fixed-rate run: cores used (1.0 = one core) by group. */
  cores: Record<string, number> | null;
  /** Fixed-rate run: CPU milliseconds per message, of the XMPP server and of gateway + PostgreSQL. */
  cpuMsPerMessage: { server: number | null; gatewayAndPostgres: number | null } | null;
  measured?: Measured | undefined;
}

export interface Target {
  server: ServerKind;
  name: string;
  value: number | null;
  /** The value must be ≤ limit ("max") or ≥ limit ("min"). */
  limit: number | null;
  kind: "min" | "max";
  /** null: cannot be checked (a figure is missing). */
  pass: boolean | null;
  basis: string;
}

export interface ServerReport {
  server: ServerKind;
  rows: Row[];
  targets: Target[];
  /** --cpu-prof: the gateway over the throughput runs of the Balcony row (or of the batch row: --cpu-prof-row). */
  profile: ProfileSummary | null;
  /** --cpu-prof: the gateway over the Balcony row's fixed-rate run. */
  rateProfile: ProfileSummary | null;
  details: string[];
}

/**
 * Peer figures measured elsewhere (issue 10), used when the peer cannot run here: Prosody's mod_rest
 * is not in Debian's prosody-modules. Ratio to the ceiling; p50/p99 (ms) and the server's CPU (cores)
 * at 500 msg/s.
 */
export const PEER_REFERENCE: Record<ServerKind, { ratio: number; p50Ms: number; p99Ms: number; serverCores: number; rate: number }> = {
  prosody: { ratio: 0.21, p50Ms: 0.36, p99Ms: 2.68, serverCores: 0.21, rate: 500 },
  ejabberd: { ratio: 0.12, p50Ms: 0.58, p99Ms: 1.31, serverCores: 0.34, rate: 500 },
};

/** Builds a row from measured figures; `ceiling` is the same server's ceiling row (null for itself). */
export function measuredRow(key: RowKey, label: string, server: ServerKind, m: Measured, ceiling: Row | null): Row {
  const f = m.fixedRate;
  const cores = f ? f.cpu.cores : null;
  const perMsg = (c: number) => (f && f.messages > 0 ? (c * f.cpu.seconds * 1000) / f.messages : null);
  const gwPg = cores && cores[GROUPS.gateway] !== undefined ? (cores[GROUPS.gateway] ?? 0) + (cores[GROUPS.dbBackends] ?? 0) : null;
  return {
    key,
    label,
    status: "measured",
    msgsPerSec: m.msgsPerSec,
    ratio: ceiling ? ratioOf(m.msgsPerSec, ceiling.msgsPerSec) : 1,
    p50Ms: f ? f.latencyMs.p50 : null,
    p99Ms: f ? f.latencyMs.p99 : null,
    cores,
    cpuMsPerMessage: f ? { server: perMsg(cores?.[server] ?? NaN), gatewayAndPostgres: gwPg === null ? null : perMsg(gwPg) } : null,
    measured: m,
  };
}

function ratioOf(a: number | null, b: number | null): number | null {
  return a !== null && b !== null && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null;
}

export function referencePeerRow(server: ServerKind, label: string, why: string): Row {
  const r = PEER_REFERENCE[server];
  return {
    key: "peer",
    label,
    status: "reference",
    note: `not available here (${why}); figures quoted from issue 10, not measured in this run`,
    msgsPerSec: null,
    ratio: r.ratio,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    cores: { [server]: r.serverCores },
    cpuMsPerMessage: { server: (r.serverCores * 1000) / r.rate, gatewayAndPostgres: null },
  };
}

export function unavailableRow(key: RowKey, label: string, why: string): Row {
  return { key, label, status: "not-available", note: `not available (${why})`, msgsPerSec: null, ratio: null, p50Ms: null, p99Ms: null, cores: null, cpuMsPerMessage: null };
}

function target(server: ServerKind, name: string, value: number | null, kind: "min" | "max", limit: number | null, basis: string): Target {
  const ok = value !== null && limit !== null && Number.isFinite(value) && Number.isFinite(limit);
  return { server, name, value: ok ? value : value ?? null, limit, kind, pass: ok ? (kind === "min" ? value >= limit : value <= limit) : null, basis };
}

/** Issue 10's targets for one server's rows. */
export function checkTargets(server: ServerKind, rows: Row[], rate: number): Target[] {
  const get = (k: RowKey) => rows.find((r) => r.key === k);
  const ceiling = get("ceiling");
  const peer = get("peer");
  const balcony = get("balcony");
  const batch = get("batch");
  const peerSrc = peer?.status === "reference" ? "reference figure" : "measured";
  const t: Target[] = [];
  const peerRatio = peer?.ratio ?? null;
  t.push(target(server, "Balcony throughput / ceiling ≥ 2 × peer's", balcony?.ratio ?? null, "min", peerRatio === null ? null : 2 * peerRatio, `peer ${fmtRatio(peerRatio)}x of ceiling (${peerSrc})`));
  const c50 = ceiling?.p50Ms ?? null;
  const c99 = ceiling?.p99Ms ?? null;
  t.push(target(server, `Balcony p50 at ${rate}/s ≤ 1.5 × ceiling's`, balcony?.p50Ms ?? null, "max", c50 === null ? null : 1.5 * c50, `ceiling p50 ${fmtMs(c50)} ms`));
  t.push(target(server, `Balcony p99 at ${rate}/s ≤ 2 × ceiling's`, balcony?.p99Ms ?? null, "max", c99 === null ? null : 2 * c99, `ceiling p99 ${fmtMs(c99)} ms`));
  const peerCpu = peer?.cpuMsPerMessage?.server ?? null;
  t.push(target(server, `CPU ms/msg at ${rate}/s (gateway + Postgres) ≤ peer server's`, balcony?.cpuMsPerMessage?.gatewayAndPostgres ?? null, "max", peerCpu, `peer ${server} ${fmtMs(peerCpu)} ms/msg (${peerSrc})`));
  if (batch) t.push(target(server, "Batch throughput / ceiling ≥ 0.8", batch.status === "measured" ? batch.ratio : null, "min", 0.8, batch.status === "measured" ? "" : (batch.note ?? "")));
  return t;
}

function cpuCell(row: Row, server: ServerKind): string {
  if (!row.cores) return "";
  const c = row.cores;
  if (row.key === "balcony" || row.key === "batch") {
    return `Balcony ${fmtPct(c[GROUPS.gateway])}, ${server} ${fmtPct(c[server])}, Postgres ${fmtPct(c[GROUPS.dbBackends])}`;
  }
  return `${server} ${fmtPct(c[server])}`;
}

function perMsgCell(row: Row): string {
  const m = row.cpuMsPerMessage;
  if (!m) return "";
  if (row.key === "balcony" || row.key === "batch") return `${fmtMs(m.gatewayAndPostgres)} (gw+pg)`;
  return `${fmtMs(m.server)} (server)`;
}

function lossCell(row: Row): string {
  const m = row.measured;
  if (!m) return "";
  const all = [...m.runs, ...(m.fixedRate ? [m.fixedRate] : [])];
  const lost = all.reduce((a, r) => a + r.lost, 0);
  const dup = all.reduce((a, r) => a + r.duplicates, 0);
  const refused = all.reduce((a, r) => a + r.refused, 0);
  return `${lost}/${dup}/${refused}`;
}

export function formatTable(reports: ServerReport[], rate: number): string {
  const rows: string[][] = [["", "msg/s", "/ ceiling", `e2e p50 / p99 at ${rate} msg/s`, `CPU at ${rate} msg/s`, "CPU ms/msg", "lost/dup/refused"]];
  const notes: string[] = [];
  for (const rep of reports) {
    for (const row of rep.rows) {
      if (row.note) notes.push(`(${notes.length + 1}) ${row.label}: ${row.note}`);
      const label = row.note ? `${row.label} (${notes.length})` : row.label;
      if (row.status === "not-available") {
        rows.push([label, "not available", "", "", "", "", ""]);
        continue;
      }
      const ref = row.status === "reference" ? " (ref)" : "";
      const lat = row.p50Ms !== null ? `${fmtMs(row.p50Ms)} / ${fmtMs(row.p99Ms)} ms${ref}` : "";
      rows.push([label, fmtInt(row.msgsPerSec), `${fmtRatio(row.ratio)}${ref}`, lat, `${cpuCell(row, rep.server)}${row.cores ? ref : ""}`, `${perMsgCell(row)}${row.cpuMsPerMessage ? ref : ""}`, lossCell(row)]);
    }
  }
  return [markdownTable(rows), ...(notes.length ? ["", ...notes] : [])].join("\n");
}

export function formatTargets(reports: ServerReport[]): string {
  const lines: string[] = ["Targets (issue 10):"];
  for (const rep of reports) {
    for (const t of rep.targets) {
      const verdict = t.pass === null ? "N/A " : t.pass ? "PASS" : "FAIL";
      const cmp = t.kind === "min" ? "≥" : "≤";
      const fmt = (x: number | null) => (x === null ? "-" : t.name.includes("p50") || t.name.includes("p99") || t.name.includes("ms/msg") ? `${fmtMs(x)} ms` : `${fmtRatio(x)}x`);
      lines.push(`  ${verdict}  ${rep.server}: ${t.name}: ${fmt(t.value)} ${cmp} ${fmt(t.limit)}${t.basis ? `  [${t.basis}]` : ""}`);
    }
  }
  return lines.join("\n");
}

/** The detail lines of one measured row: runs, outcomes, CPU split, errors. */
export function rowDetails(row: Row, server: ServerKind): string[] {
  const m = row.measured;
  if (!m) return [];
  const out: string[] = [`${server} / ${row.label}:`];
  m.runs.forEach((r, i) => {
    out.push(
      `  run ${i + 1}: ${fmtInt(r.msgsPerSec)} msg/s, ${r.delivered}/${r.messages} delivered in ${r.seconds.toFixed(2)} s` +
        `${r.answerMs.count ? `, answer p50 ${fmtMs(r.answerMs.p50)} ms p99 ${fmtMs(r.answerMs.p99)} ms` : ""}` +
        `; ${Object.entries(r.outcomes).map(([k, v]) => `${k}: ${v}`).join(", ")}` +
        `${r.lost ? `; ${r.lost} lost` : ""}${r.duplicates ? `; ${r.duplicates} duplicated` : ""}${r.strays ? `; ${r.strays} strays` : ""}`,
    );
    if (r.sampleError) out.push(`    first error: ${r.sampleError}`);
  });
  const f = m.fixedRate;
  if (f) {
    out.push(
      `  at ${f.rate}/s: ${f.delivered}/${f.messages} delivered, e2e p50 ${fmtMs(f.latencyMs.p50)} p90 ${fmtMs(f.latencyMs.p90)} p99 ${fmtMs(f.latencyMs.p99)} max ${fmtMs(f.latencyMs.max)} ms` +
        `${f.answerMs.count ? `; answer p50 ${fmtMs(f.answerMs.p50)} p99 ${fmtMs(f.answerMs.p99)} ms` : ""}; load generator at most ${fmtMs(f.maxLagMs)} ms behind schedule` +
        `${f.lost ? `; ${f.lost} lost` : ""}${f.duplicates ? `; ${f.duplicates} duplicated` : ""}${f.refused ? `; ${f.refused} refused` : ""}`,
    );
    out.push(`    cores used: ${formatCpu(f.cpu, server)}`);
    out.push(`    waiting for a core (all threads, ms per s): ${formatWaits(f.cpu, server)}`);
    out.push(`    wake-ups a message (sleeps of all threads): ${formatSleeps(f.cpu, server, f.messages)}`);
    if (f.sampleError) out.push(`    first error: ${f.sampleError}`);
  }
  return out;
}
