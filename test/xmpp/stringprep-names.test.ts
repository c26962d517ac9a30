// Names the XMPP server spells otherwise (src/domain/stringprep-fold.ts): Prosody and ejabberd
// prepare a room's localpart with stringprep, which folds "ß" to "ss". Asked to join "straße-…",
// the server put the account in "strasse-…" and answered from there, and the join waited for an
// answer from "straße-…" until it timed out (503), kept trying, and left the account in the other
// room. Now such a join is refused at once, naming the room to join. So is an account so named:
// Prosody delivers what is sent to "straße-…@gw" to "strasse-…@gw", and it bounced.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connectUser, xml, type XmlElement } from "../../scripts/harness/xmpp-user.js";
import { uniq, waitFor } from "../helpers/gateway.js";
import { enterRoom, MUC, roomWorld } from "../helpers/muc.js";
import { KINDS } from "../helpers/servers.js";

for (const kind of KINDS) {
  describe(`names stringprep folds (${kind})`, () => {
    const w = roomWorld(kind, { AUTO_PROVISION: "true" });

    it("a join of a room the server calls otherwise is 400 invalid-jid naming the server's spelling; it sends nothing, and that one joins", async () => {
      const lp = uniq("sharp");
      await w.gw.createAccount(lp);
      const token = w.gw.token(lp);
      const tag = uniq("");
      const [ours, theirs] = [`straße-${tag}@${MUC}`, `strasse-${tag}@${MUC}`];
      await enterRoom(w.juliet, theirs, "juliet");
      const mark = w.juliet.stanzas.length;

      const refused = await w.gw.request("PUT", `/v1/rooms/${encodeURIComponent(ours)}`, { token, body: { nick: "romeo" } });
      assert.equal(refused.status, 400, refused.text);
      assert.deepEqual([refused.body.code, refused.body.field, refused.body.room], ["invalid-jid", "params.room", theirs]);
      assert.match(refused.body.detail, new RegExp(`call "${ours}" "${theirs}"`));
      assert.deepEqual((await w.gw.request("GET", "/v1/rooms", { token })).body.items, [], "nothing recorded");

      const joined = await w.gw.request("PUT", `/v1/rooms/${encodeURIComponent(theirs)}`, { token, body: { nick: "romeo" } });
      assert.equal(joined.status, 200, joined.text);
      assert.equal(joined.body.room, theirs);
      // Juliet, in the room, saw the account enter once: by the join that was answered, not before it.
      const entered = (s: XmlElement) => s.is("presence") && s.attrs.from === `${theirs}/romeo` && s.attrs.type === undefined;
      await w.juliet.waitFor((s) => w.juliet.stanzas.indexOf(s) >= mark && entered(s), 10_000);
      assert.equal(w.juliet.stanzas.slice(mark).filter(entered).length, 1);
    });

    it("an account the server calls otherwise is 400 invalid-jid naming the server's spelling, made by an admin or a token's first use, nor is a token minted for it; none is created", async () => {
      const tag = uniq("");
      const [ours, theirs] = [`straße-${tag}`, `strasse-${tag}`];
      const made = await w.gw.request("POST", "/v1/accounts", { token: w.gw.adminToken, body: { localpart: ours } });
      assert.equal(made.status, 400, made.text);
      assert.deepEqual([made.body.code, made.body.field, made.body.localpart], ["invalid-jid", "body.localpart", theirs]);
      // Nor is a token minted for it (POST /v1/tokens): it could never be used.
      const minted = await w.gw.request("POST", "/v1/tokens", { token: w.gw.adminToken, body: { account: ours } });
      assert.equal(minted.status, 400, minted.text);
      assert.deepEqual([minted.body.code, minted.body.field, minted.body.localpart], ["invalid-jid", "body.account", theirs]);
      const provisioned = await w.gw.request("GET", "/v1/roster", { token: w.gw.token(ours) });
      assert.equal(provisioned.status, 400, provisioned.text);
      assert.deepEqual([provisioned.body.code, provisioned.body.localpart], ["invalid-jid", theirs]);
      const none = await w.gw.running.db.pool.query("SELECT localpart FROM account WHERE localpart IN ($1, $2)", [ours, theirs]);
      assert.deepEqual(none.rows, []);
      assert.equal((await w.gw.request("GET", "/v1/roster", { token: w.gw.token(theirs) })).status, 200, "the server's spelling is provisioned");
    });

    // The sending audit of stop 65: a message to "straße@…" went to the server's "strasse@…", whose
    // receipt (and error, and replies) came from there: the message stayed `sent`, her reply was
    // another conversation. So would her presence, for a contact so named, and a block so named
    // would cover none of her stanzas.
    it("a recipient, a contact to add or a JID to block the server calls otherwise is 400 invalid-jid naming the server's spelling; nothing is sent, and the server's spelling works", async () => {
      const tag = uniq("");
      const [ours, theirs] = [`straße-${tag}@localhost`, `strasse-${tag}@localhost`];
      await w.server.registerUser(`strasse-${tag}`, "pw");
      const her = await connectUser(w.server, `strasse-${tag}`, "pw", "desk");
      try {
        await her.sendPresence();
        const lp = uniq("sharp");
        await w.gw.createAccount(lp);
        const token = w.gw.token(lp);
        const call = (method: string, path: string, body?: unknown) => w.gw.request(method, path, { token, body });
        const refusedAt = (field: string) => (r: { status: number; body: Record<string, unknown>; text: string }) => {
          assert.equal(r.status, 400, r.text);
          assert.deepEqual([r.body.code, r.body.field, r.body.jid], ["invalid-jid", field, theirs], r.text);
        };
        refusedAt("body.to")(await call("POST", "/v1/messages", { to: ours, body: "hello" }));
        const batch = await call("POST", "/v1/messages/batch", { messages: [{ to: ours, body: "hello" }] });
        assert.equal(batch.status, 200, batch.text);
        assert.deepEqual([batch.body.results[0].code, batch.body.results[0].field, batch.body.results[0].jid], ["invalid-jid", "body.messages.0.to", theirs]);
        refusedAt("params.jid")(await call("PUT", `/v1/roster/${encodeURIComponent(ours)}`, {}));
        refusedAt("params.jid")(await call("POST", `/v1/roster/${encodeURIComponent(ours)}/subscribe`));
        refusedAt("params.jid")(await call("POST", `/v1/roster/${encodeURIComponent(ours)}/approve`));
        refusedAt("params.jid")(await call("PUT", `/v1/blocklist/${encodeURIComponent(ours)}`));
        assert.equal((await call("DELETE", `/v1/blocklist/${encodeURIComponent(ours)}`)).status, 204, "an unblock takes any spelling");
        assert.deepEqual((await call("GET", "/v1/roster")).body.items, [], "no roster item");
        // The server's spelling: her receipt comes back for the message sent to it, after nothing else.
        const sent = await call("POST", "/v1/messages", { to: theirs, body: "hello", receipt: true });
        assert.equal(sent.status, 202, sent.text);
        await her.waitFor((s) => s.is("message") && s.getChildText("body") === "hello", 10_000);
        const fromAccount = her.stanzas.filter((s) => s.attrs.from?.startsWith(`${lp}@`));
        assert.deepEqual(fromAccount.map((s) => s.name), ["message"], "one stanza from the account: the message to her spelling");
        const got = fromAccount[0]!;
        await her.send(xml("message", { to: got.attrs.from, id: uniq("r-") }, xml("received", { xmlns: "urn:xmpp:receipts", id: got.attrs.id })));
        await waitFor(async () => (await call("GET", `/v1/messages/${sent.body.id}`)).body.status === "delivered", 10_000, "delivered");
      } finally {
        await her.stop();
      }
    });
  });
}
