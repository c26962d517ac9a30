// GET /v1/roster's gzip content coding (src/http/gzip.ts), over real HTTP: a large roster goes
// gzip-coded to a client that accepts it (the same JSON once decoded, the same ETag, Vary), as it
// is to one that does not; a small one, and a client that refuses gzip, get it uncoded; 304 stays.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import pg from "pg";
import { Client } from "undici";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { GZIP_MIN_BYTES } from "../../src/http/gzip.js";
import { startTestGateway, uniq, type TestGateway } from "../helpers/gateway.js";

describe("GET /v1/roster, gzip-coded when large and accepted", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let http: Client;

  before(async () => {
    server = await startXmppServer("prosody");
    gw = await startTestGateway(server);
    // undici's request: no coding of its own, so the test sees the bytes as sent.
    http = new Client(gw.url);
  });
  after(async () => {
    await http?.close();
    await gw?.stop();
    await server?.stop();
  });

  /** An account with `items` roster items, written straight to the database (one statement). */
  async function rosterOf(items: number): Promise<string> {
    const lp = uniq("romeo");
    await gw.createAccount(lp);
    const client = new pg.Client({ connectionString: gw.db.url });
    await client.connect();
    try {
      await client.query(
        `INSERT INTO roster_item (account_id, jid, name, groups, subscription, in_roster, ver)
         SELECT a.id, 'fan' || g || '@localhost', 'Fan ' || g, ARRAY['fans'], 'both', true, g FROM account a, generate_series(1, $2) g WHERE a.localpart = $1`,
        [lp, items],
      );
      await client.query("UPDATE account SET roster_ver = $2 WHERE localpart = $1", [lp, items]);
    } finally {
      await client.end();
    }
    return gw.token(lp);
  }

  async function get(token: string, headers: Record<string, string> = {}) {
    const r = await http.request({ method: "GET", path: "/v1/roster", headers: { authorization: `Bearer ${token}`, ...headers } });
    return { status: r.statusCode, headers: r.headers, bytes: Buffer.from(await r.body.arrayBuffer()) };
  }

  it("a large roster: gzip for a client that takes it, the same JSON and ETag as uncoded; identity otherwise", async () => {
    const token = await rosterOf(400);
    const plain = await get(token);
    assert.equal(plain.status, 200);
    assert.equal(plain.headers["content-encoding"], undefined);
    assert.equal(plain.headers.vary, "accept-encoding, authorization");
    assert.ok(plain.bytes.length >= GZIP_MIN_BYTES, `the roster is large enough to be coded (${plain.bytes.length} bytes)`);
    const roster = JSON.parse(plain.bytes.toString("utf8")) as { ver: string; items: { jid: string }[] };
    assert.equal(roster.items.length, 400);

    for (const accept of ["gzip", "gzip, deflate, br", "br;q=1, gzip;q=0.8", "*"]) {
      const coded = await get(token, { "accept-encoding": accept });
      assert.equal(coded.status, 200, accept);
      assert.equal(coded.headers["content-encoding"], "gzip", accept);
      assert.equal(coded.headers.vary, "accept-encoding, authorization", accept);
      assert.equal(coded.headers.etag, plain.headers.etag, `${accept}: the ETag names the roster's version, whatever the coding`);
      assert.equal(Number(coded.headers["content-length"]), coded.bytes.length, accept);
      assert.ok(coded.bytes.length < plain.bytes.length / 4, `${accept}: ${coded.bytes.length} bytes against ${plain.bytes.length}`);
      assert.deepEqual(gunzipSync(coded.bytes), plain.bytes, `${accept}: the same JSON once decoded`);
    }
    for (const accept of ["identity", "gzip;q=0", "deflate", "identity, gzip"]) {
      const uncoded = await get(token, { "accept-encoding": accept });
      assert.equal(uncoded.headers["content-encoding"], undefined, accept);
      assert.deepEqual(uncoded.bytes, plain.bytes, accept);
    }
    // The version still decides a 304, with the coding asked for or not.
    const notModified = await get(token, { "accept-encoding": "gzip", "if-none-match": String(plain.headers.etag) });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.bytes.length, 0);
    assert.equal(notModified.headers.vary, "accept-encoding, authorization");
  });

  it("a changed roster is coded afresh: the new version's JSON, not the kept coding of the old", async () => {
    const token = await rosterOf(400);
    const before = await get(token, { "accept-encoding": "gzip" });
    const put = await gw.request("PUT", `/v1/roster/${encodeURIComponent("fan7@localhost")}`, { token, body: { name: "Renamed" } });
    assert.equal(put.status, 200);
    const afterChange = await get(token, { "accept-encoding": "gzip" });
    assert.equal(afterChange.headers["content-encoding"], "gzip");
    assert.notEqual(afterChange.headers.etag, before.headers.etag);
    const items = (JSON.parse(gunzipSync(afterChange.bytes).toString("utf8")) as { items: { jid: string; name: string }[] }).items;
    assert.equal(items.find((i) => i.jid === "fan7@localhost")?.name, "Renamed");
    assert.equal(items.length, 400);
  });

  it("a small roster goes uncoded, gzip accepted or not", async () => {
    const token = await rosterOf(3);
    const r = await get(token, { "accept-encoding": "gzip" });
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-encoding"], undefined);
    assert.equal(r.headers.vary, "accept-encoding, authorization");
    assert.equal((JSON.parse(r.bytes.toString("utf8")) as { items: unknown[] }).items.length, 3);
  });
});
