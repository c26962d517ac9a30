// Contacts' presence after the component link comes back (RFC 6121 §4, src/services/presence.ts
// republish): while the link was down a contact went offline and nobody heard, and her server
// need not answer a probe for her (ejabberd sends nothing; Prosody sends unavailable from her bare
// JID, §4.3.2). So at link-up every account with a session or stored contact presence probes again
// and forgets what no answer confirmed within 5 s: the contact who left is no longer listed by
// GET /v1/presence; the one who stayed online stays listed, and is never shown going offline. An
// account with no session at all and one with a session, on Prosody and ejabberd; the link is
// dropped by destroying its socket.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import pg from "pg";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { holdReconnect, startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { FAULT_KINDS } from "../helpers/servers.js";
import { comeOnline } from "../helpers/xmpp-world.js";

type Ev = { id: number; event: string; data: { jid?: string; type?: string; from?: string } };

for (const kind of FAULT_KINDS) {
  describe(`contacts' presence after the link comes back (${kind})`, () => {
    let server: XmppServer;
    let gw: TestGateway;
    const users: XmppUser[] = [];
    /** Every presence from a contact to an account that reached the gateway: its `to`. */
    const tappedTo: string[] = [];

    before(async () => {
      server = await startXmppServer(kind);
      await server.registerUser("juliet", "pw");
      await server.registerUser("nurse", "pw");
      gw = await startTestGateway(server, { XMPP_RECONNECT_MAX: "2s", SESSION_GRACE_SECONDS: "600" });
      gw.running.link.on("stanza", (s) => {
        if (s.name === "presence" && /^(juliet|nurse)@localhost/.test(s.attrs.from ?? "") && !s.attrs.type?.startsWith("subscri")) tappedTo.push(s.attrs.to ?? "");
      });
      for (const name of ["juliet", "nurse"]) {
        const u = await connectUser(server, name, "pw", "home");
        await comeOnline(u);
        users.push(u);
      }
    });
    after(async () => {
      for (const u of users) await u.stop();
      await gw?.stop();
      await server?.stop();
    });

    const listed = async (token: string) => ((await gw.request("GET", "/v1/presence", { token })).body.items as { jid: string }[]).map((i) => i.jid).sort();
    const events = async (token: string, since: number) => (await gw.request("GET", `/v1/events?since=${since}&limit=1000`, { token, headers: { accept: "application/json" } })).body.items as Ev[];

    /** The account subscribes to both users, who approve; their servers send their presence (§3.1.5). */
    async function subscribedToBoth(lp: string): Promise<string> {
      await gw.createAccount(lp);
      const token = gw.token(lp, { resource: "phone" });
      const jid = `${lp}@${gw.domain}`;
      for (const u of users) {
        const mark = u.stanzas.length;
        assert.equal((await gw.request("POST", `/v1/roster/${u.jid.split("/")[0]}/subscribe`, { token })).status, 202);
        await u.waitFor((s) => u.stanzas.indexOf(s) >= mark && s.is("presence") && s.attrs.type === "subscribe" && s.attrs.from === jid);
        await u.send(xml("presence", { to: jid, type: "subscribed" }));
      }
      await waitFor(async () => (await listed(token)).join() === "juliet@localhost,nurse@localhost", 10_000, `${lp}: both contacts' presence stored`);
      return token;
    }

    it("forgets a contact who went offline while the link was down and lists again the one who stayed, with and without a session", async () => {
      const lonely = await subscribedToBoth("lonely"); // no session, ever
      const romeo = await subscribedToBoth("romeo");
      const beforePut = (await events(romeo, 0)).at(-1)!.id;
      assert.equal((await gw.request("PUT", "/v1/presence", { token: romeo, body: {} })).status, 200);
      // Romeo's initial presence probed both (§4.2.1): their answers are in before the mark below.
      const answered = async () => new Set((await events(romeo, beforePut)).filter((e) => e.event === "presence" && e.data.type === "available").map((e) => e.data.jid)).size === 2;
      await waitFor(answered, 10_000, "both answered Romeo's probe");
      assert.ok(
        tappedTo.length > 0 && tappedTo.every((to) => !to.includes("/")),
        `the contacts' presence after approval and probe answers came to the accounts' bare JIDs: ${tappedTo.join(", ")}`,
      );
      const marks = { lonely: (await events(lonely, 0)).at(-1)!.id, romeo: (await events(romeo, 0)).at(-1)!.id };

      const release = holdReconnect(gw);
      gw.running.link.xmpp.socket?.destroy();
      await waitFor(() => !gw.running.link.online, 10_000, "the link down");
      await users[1]!.stop(); // the nurse goes offline: her unavailable bounces at the missing component
      await new Promise((r) => setTimeout(r, 500));
      release();
      await waitFor(() => gw.running.link.online, 15_000, "the link back");

      for (const [name, token] of [
        ["lonely", lonely],
        ["romeo", romeo],
      ] as const) {
        let now: string[] = [];
        await waitFor(async () => (now = await listed(token)).join() === "juliet@localhost", 10_000, `${name}: only Juliet listed`).catch((err: unknown) => {
          throw new Error(`${String(err)}: ${now.join(", ")}`);
        });
        const after = (await events(token, marks[name])).filter((e) => e.event === "presence").map((e) => `${e.data.jid} ${e.data.type}`);
        assert.ok(after.includes("nurse@localhost unavailable"), `${name}: the nurse's unavailable event: ${after.join(", ")}`);
      }
      // Nothing is left to confirm (the nurse forgotten, Juliet confirmed by her answer), so nothing
      // more can be forgotten: Juliet, who answered, never was.
      const db = new pg.Client({ connectionString: gw.db.url });
      await db.connect();
      try {
        const toConfirm = async () => Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM contact_presence WHERE stale_since IS NOT NULL")).rows[0]!.n);
        await waitFor(async () => (await toConfirm()) === 0, 20_000, "no contact presence left to confirm");
      } finally {
        await db.end();
      }
      for (const [name, token] of [
        ["lonely", lonely],
        ["romeo", romeo],
      ] as const) {
        assert.deepEqual(await listed(token), ["juliet@localhost"], `${name}: Juliet still listed`);
        const after = (await events(token, marks[name])).filter((e) => e.event === "presence").map((e) => `${e.data.jid} ${e.data.type}`);
        const juliet = after.filter((e) => e.startsWith("juliet@"));
        assert.ok(!juliet.includes("juliet@localhost unavailable"), `${name}: Juliet never shown going offline: ${after.join(", ")}`);
        assert.ok(juliet.includes("juliet@localhost available"), `${name}: her server's answer to the probe: ${after.join(", ")}`);
      }
      assert.ok(!tappedTo.some((to) => to.includes("/")), `the probes' answers too came to bare JIDs: ${tappedTo.join(", ")}`);
    });
  });
}
