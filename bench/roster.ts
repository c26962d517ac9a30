// Roster and presence at scale (issue 3): GET /v1/roster latency for a 5,000-item roster, and
// the time a presence change broadcast to 5,000 subscribers takes to reach the `--online` of
// them that are logged in (50 by default): deliveries are counted there only, not at all 5,000.
//
//   npm run bench:roster [-- --items 5000 --requests 200 --online 50]
//
// The gateway runs as its own process against a fresh database and a real Prosody. The roster is
// seeded in SQL (5,000 subscription handshakes would measure something else). Subscribers are
// localhost users; `--online` of them, spread evenly over the roster (the first and the last
// included), are logged in as real XMPP clients, and the broadcast time is when the last of them
// has the new presence.
import { parseArgs } from "node:util";
import { cpus } from "node:os";
import jwt from "jsonwebtoken";
import pg from "pg";
import { startProsody } from "../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../scripts/harness/xmpp-user.js";
import { createTestDatabase } from "../scripts/harness/database.js";
import { JWT_SECRET, freePort, startGatewayProcess } from "../scripts/harness/gateway-process.js";

const { values } = parseArgs({ options: { items: { type: "string", default: "5000" }, requests: { type: "string", default: "200" }, online: { type: "string", default: "50" } } });
const ITEMS = Number(values.items);
const REQUESTS = Number(values.requests);
const ONLINE = Math.min(Number(values.online), ITEMS);

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const ms = (n: number) => `${n.toFixed(1)} ms`;
const sign = (claims: object) => jwt.sign({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims }, JWT_SECRET, { algorithm: "HS256" });

async function main(): Promise<void> {
  const server = await startProsody();
  const db = await createTestDatabase();
  const gp = await startGatewayProcess(server, db.url, await freePort(), { RATE_LIMIT_PER_ACCOUNT: "0", RATE_LIMIT_PER_IP: "0" });
  const users: XmppUser[] = [];
  try {
    const admin = sign({ sub: "admin", scope: "admin" });
    await fetch(`${gp.url}/v1/accounts`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ localpart: "star" }) });
    const token = sign({ sub: "star", resource: "bench" });
    const star = `star@${server.componentDomain}`;

    // Seed: ITEMS contacts with a mutual subscription.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(
      `INSERT INTO roster_item (account_id, jid, name, groups, subscription, in_roster, ver)
       SELECT a.id, 'fan' || g || '@localhost', 'Fan ' || g, ARRAY['fans'], 'both', true, g FROM account a, generate_series(0, $1 - 1) g WHERE a.localpart = 'star'`,
      [ITEMS],
    );
    await client.query(`UPDATE account SET roster_ver = $1 WHERE localpart = 'star'`, [ITEMS]);
    await client.end();

    // Online subscribers, spread over the roster.
    const picks = [...new Set(Array.from({ length: ONLINE }, (_, i) => Math.round((i * (ITEMS - 1)) / Math.max(1, ONLINE - 1))))];
    for (const i of picks) await server.registerUser(`fan${i}`, "pw");
    for (const i of picks) {
      const u = await connectUser(server, `fan${i}`, "pw", "b");
      await u.sendPresence();
      users.push(u);
    }

    // GET /v1/roster latency.
    const get = async (headers: Record<string, string> = {}) => {
      const t = performance.now();
      const r = await fetch(`${gp.url}/v1/roster`, { headers: { authorization: `Bearer ${token}`, ...headers } });
      const text = await r.text();
      return { ms: performance.now() - t, status: r.status, etag: r.headers.get("etag"), bytes: text.length, items: r.status === 200 ? (JSON.parse(text) as { items: unknown[] }).items.length : 0 };
    };
    for (let i = 0; i < 20; i++) await get();
    const full: number[] = [];
    let last = await get();
    for (let i = 0; i < REQUESTS; i++) full.push((last = await get()).ms);
    if (last.items !== ITEMS) throw new Error(`roster has ${last.items} items, expected ${ITEMS}`);
    const cached: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const r = await get({ "if-none-match": last.etag! });
      if (r.status !== 304) throw new Error(`expected 304, got ${r.status}`);
      cached.push(r.ms);
    }

    // Presence broadcast: first available presence (probes + broadcast), then a change.
    const broadcast = async (show: string): Promise<{ put: number; last: number }> => {
      const marks = users.map((u) => u.stanzas.length);
      const t = performance.now();
      const r = await fetch(`${gp.url}/v1/presence`, { method: "PUT", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ show }) });
      const put = performance.now() - t;
      if (r.status !== 200) throw new Error(`PUT /v1/presence: ${r.status} ${await r.text()}`);
      await Promise.all(users.map((u, k) => u.waitFor((s) => u.stanzas.indexOf(s) >= marks[k]! && s.is("presence") && s.attrs.from === `${star}/bench` && s.getChildText("show") === show, 60_000)));
      return { put, last: performance.now() - t };
    };
    const first = await broadcast("chat");
    const change = await broadcast("away");
    const change2 = await broadcast("dnd");

    console.log(`\nBalcony roster and presence benchmark (${cpus().length} cores, Prosody ${server.kind}, gateway in its own process)`);
    console.log(`  GET /v1/roster, ${ITEMS} items (${(last.bytes / 1024).toFixed(0)} KiB), ${REQUESTS} sequential requests: p50 ${ms(pct(full, 50))}, p99 ${ms(pct(full, 99))}`);
    console.log(`  GET /v1/roster with If-None-Match (304):           p50 ${ms(pct(cached, 50))}, p99 ${ms(pct(cached, 99))}`);
    console.log(`  presence broadcast to ${ITEMS} subscribers, measured at ${users.length} of them, logged in and spread over the roster (time until the last of these ${users.length} has it; the ${ITEMS - users.length} offline ones are not observed):`);
    console.log(`    first available (with ${ITEMS} probes): ${ms(first.last)} (PUT answered after ${ms(first.put)})`);
    console.log(`    change:                            ${ms(change.last)} (PUT answered after ${ms(change.put)}); again ${ms(change2.last)}`);
    console.log(JSON.stringify({ bench: "roster", items: ITEMS, rosterP50: pct(full, 50), rosterP99: pct(full, 99), notModifiedP50: pct(cached, 50), measuredAtOnline: users.length, broadcastFirstMs: first.last, broadcastChangeMs: Math.min(change.last, change2.last) }));
  } finally {
    for (const u of users) await u.stop();
    await gp.stop("SIGTERM");
    await db.drop();
    await server.stop();
  }
}

const timer = setTimeout(() => {
  console.error("benchmark timed out after 5 minutes");
  process.exit(1);
}, 300_000);
timer.unref();
main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
