// Found by the account lifecycle audit of stop 65: a contact the account blocked was left out of
// the deletion's goodbyes. Her server kept the subscription to the deleted JID, and when the name
// was created again, the new account received her presence as if subscribed.
// API.md Accounts: "unsubscribe/unsubscribed to every contact as RFC 6121 2.5.2 does"; Prosody's
// own user deletion (mod_roster user-deleted -> roster-item-removed) sends them to blocked contacts
// too (server-generated stanzas do not pass mod_blocklist's pre-events).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { xml } from "../../scripts/harness/xmpp-user.js";
import { accountDriver } from "../helpers/account-driver.js";
import { waitFor } from "../helpers/gateway.js";
import { KINDS } from "../helpers/servers.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

const WAIT = 15_000;

for (const kind of KINDS) {
  describe(`deleting an account that blocked a contact (${kind})`, () => {
    let w: XmppWorld<"juliet">;
    before(async () => {
      w = await startWorld(kind, { juliet: "desk" }, { roster: true });
    });
    after(async () => {
      await w?.stop();
    });
    const juliet = () => w.users.juliet;
    async function userRoster(): Promise<Map<string, string>> {
      const id = `roster-${randomBytes(4).toString("hex")}`;
      await juliet().send(xml("iq", { type: "get", id }, xml("query", { xmlns: "jabber:iq:roster" })));
      const res = await juliet().waitFor((s) => s.attrs.id === id);
      const items = res.getChild("query", "jabber:iq:roster")?.getChildren("item") ?? [];
      return new Map(items.map((i) => [i.attrs.jid!, i.attrs.subscription ?? "none"]));
    }

    it("the blocked contact's subscription to and from the deleted account is cancelled, and the account made again under the name gets none of her presence", async () => {
      const r = await accountDriver(w.gw, { prefix: "blocker" });
      // Both ways subscribed.
      await juliet().send(xml("presence", { to: r.jid, type: "subscribe" }));
      await waitFor(async () => (await r.call("GET", "/v1/subscription-requests")).body.items.length === 1, WAIT, "request");
      assert.equal((await r.call("POST", "/v1/roster/juliet@localhost/approve")).status, 200);
      assert.equal((await r.call("POST", "/v1/roster/juliet@localhost/subscribe")).status, 202);
      await juliet().waitFor((s) => s.is("presence") && s.attrs.from === r.jid && s.attrs.type === "subscribe", WAIT);
      await juliet().send(xml("presence", { to: r.jid, type: "subscribed" }));
      await waitFor(async () => (await userRoster()).get(r.jid) === "both", WAIT, "juliet: both");
      // The account blocks her, then is deleted.
      assert.equal((await r.call("PUT", "/v1/blocklist/juliet@localhost")).status, 204);
      assert.equal((await w.gw.request("DELETE", `/v1/accounts/${r.lp}`)).status, 204);
      // Her roster drops to none once her server has the deletion's unsubscribe and unsubscribed.
      let left: string | undefined;
      await waitFor(async () => ((left = (await userRoster()).get(r.jid)) ?? "none") === "none", WAIT, "her subscription to end").catch(() => undefined);

      // The name is taken again; the new account comes online.
      await w.gw.createAccount(r.lp);
      const stream = await w.gw.sse("/v1/events", r.token);
      assert.equal((await r.call("PUT", "/v1/presence", {})).status, 200);
      // Juliet changes her presence: her server broadcasts it to whoever it thinks is subscribed.
      await juliet().send(xml("presence", {}, xml("status", {}, "private status for my contacts")));
      await juliet().sendMessage(r.jid, "sentinel after presence");
      await r.until("sentinel", (e) => e.event === "message" && e.data.body === "sentinel after presence");
      const leaked = (await r.events()).filter((e) => e.event === "presence" && String(e.data.jid) === "juliet@localhost").map((e) => JSON.stringify(e.data));
      await stream.close();
      assert.equal(left ?? "none", "none", `Juliet's roster still holds a '${left}' subscription with the deleted ${r.jid} (API.md: unsubscribe/unsubscribed to every contact)`);
      assert.deepEqual(leaked, [], "the new account under the name received the old account's contact's presence");
    });
  });
}
