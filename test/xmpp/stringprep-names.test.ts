// Names the XMPP server spells otherwise (src/domain/stringprep-fold.ts): Prosody and ejabberd
// prepare a room's localpart with stringprep, which folds "ß" to "ss". Asked to join "straße-…",
// the server put the account in "strasse-…" and answered from there, and the join waited for an
// answer from "straße-…" until it timed out (503), kept trying, and left the account in the other
// room. Now such a join is refused at once, naming the room to join. So is an account so named:
// Prosody delivers what is sent to "straße-…@gw" to "strasse-…@gw", and it bounced.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type XmlElement } from "../../scripts/harness/xmpp-user.js";
import { uniq } from "../helpers/gateway.js";
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
  });
}
