// Stanzas from a JID that another instance unblocked (XEP-0191 §3.4) before the instance holding
// the component link read the NOTIFY that drops its cached blocklist: the holder's cached list
// still blocks the sender, and the committed one, which the holder reads before dropping anything,
// does not (src/services/inbound.ts). Two gateways on one database, the holder (A) deaf to
// NOTIFYs while B unblocks (test/helpers/deaf-pair.ts), and a real user on a real XMPP server: her
// message and subscription request after the unblock are the account's, and nothing is bounced.
// "Nothing came back" is proven by a gateway sentinel (test/helpers/sentinel.ts) behind them on
// the same ordered path.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { xml } from "../../scripts/harness/xmpp-user.js";
import { deafLinkWorld } from "../helpers/deaf-pair.js";
import { uniq } from "../helpers/gateway.js";
import { gatewaySentinel } from "../helpers/sentinel.js";
import { KINDS } from "../helpers/servers.js";

const path = (jid: string) => `/v1/blocklist/${encodeURIComponent(jid)}`;

for (const kind of KINDS) {
  describe(`inbound stanzas from a JID unblocked on B, at the link holder A that has not heard yet (${kind})`, () => {
    const w = deafLinkWorld(kind, { juliet: "balcony" });

    it("a message and a subscription request after the unblock are the account's, and none is bounced", async () => {
      const lp = uniq("unblocked");
      const jid = await w.p.a.createAccount(lp);
      const token = w.p.a.token(lp);
      const bare = w.juliet.jid.split("/")[0]!;
      assert.equal((await w.p.a.request("PUT", path(bare), { token })).status, 204, "blocked on A");
      // A caches the list with the block as it bounces her message (service-unavailable, XEP-0191 §3.3).
      let mark = w.juliet.stanzas.length;
      await w.juliet.send(xml("message", { to: jid, type: "chat", id: "b1" }, xml("body", {}, "while blocked")));
      let end = await gatewaySentinel(w.juliet, w.p.a.domain);
      assert.deepEqual(
        w.juliet.stanzas.slice(mark, end).filter((s) => s.attrs.type === "error").map((s) => s.attrs.id),
        ["b1"],
        "bounced while blocked",
      );

      await w.p.deaf(async () => {
        assert.equal((await w.p.b.request("DELETE", path(bare), { token: w.p.b.token(lp) })).status, 204, "unblocked on B");
        mark = w.juliet.stanzas.length;
        await w.juliet.send(xml("message", { to: jid, type: "chat", id: "u1" }, xml("body", {}, "after the unblock")));
        await w.juliet.send(xml("presence", { to: jid, type: "subscribe" }));
        end = await gatewaySentinel(w.juliet, w.p.a.domain);
        const errors = w.juliet.stanzas.slice(mark, end).filter((s) => s.attrs.type === "error");
        assert.deepEqual(errors.map((s) => s.toString()), [], "nothing bounced before the sentinel's answer");
      });

      const r = await w.p.b.request("GET", "/v1/events", { token: w.p.b.token(lp) });
      assert.equal(r.status, 200, r.text);
      const events = (r.body.items as { event: string; data: { body?: unknown; jid?: string } }[]).filter((e) => e.event === "message" || e.event === "subscription");
      assert.deepEqual(
        events.map((e) => `${e.event}: ${String(e.data.body ?? e.data.jid)}`),
        ["message: after the unblock", `subscription: ${bare}`],
      );
      assert.deepEqual((await w.p.sql.query("SELECT body FROM message WHERE stanza_id = 'u1'")).rows, [{ body: "after the unblock" }], "stored");
    });
  });
}
