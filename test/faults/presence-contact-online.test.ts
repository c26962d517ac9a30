// A contact who comes online while the component link is down sends her initial presence to the
// account's bare JID, and it bounces at the missing component. At link-up (src/services/presence.ts
// republish) the gateway probed only accounts with an available session or stored contact presence,
// so an account with neither (no session; its contacts offline before the outage) listed her offline
// in GET /v1/presence until she changed her presence. Romeo (a session) and Lonely (none) must both
// list her again. Found by the presence audit of stop 64.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { connectUser } from "../../scripts/harness/xmpp-user.js";
import { holdReconnect, waitFor } from "../helpers/gateway.js";
import { comeOnline, startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 15_000;

for (const kind of KINDS) {
  describe(`a contact who comes online while the link is down (${kind})`, () => {
    let world: XmppWorld<"juliet">;
    before(async () => {
      world = await startWorld(kind, { juliet: "home" }, { roster: true, env: { XMPP_RECONNECT_MAX: "2s" } });
    });
    after(async () => world?.stop());

    it("is listed by GET /v1/presence once the link is back, with or without a session", async () => {
      const { gw, server } = world;
      const listed = async (token: string) => ((await gw.request("GET", "/v1/presence", { token })).body.items as { jid: string }[]).map((i) => i.jid);
      const tokens: Record<string, string> = {};
      for (const lp of ["lonely", "romeo"]) {
        await gw.createAccount(lp);
        const token = (tokens[lp] = gw.token(lp, { resource: "phone" }));
        const jid = `${lp}@${gw.domain}`;
        const j = world.users.juliet;
        const mark = j.stanzas.length;
        assert.equal((await gw.request("POST", "/v1/roster/juliet@localhost/subscribe", { token })).status, 202);
        await j.waitFor((s) => j.stanzas.indexOf(s) >= mark && s.is("presence") && s.attrs.type === "subscribe" && s.attrs.from === jid, WAIT);
        await j.send(xml("presence", { to: jid, type: "subscribed" }));
        await waitFor(async () => (await listed(token)).includes("juliet@localhost"), WAIT, `${lp}: juliet listed`);
      }
      // Romeo has an available session (no stream needed: the grace is 60 s); Lonely has none.
      assert.equal((await gw.request("PUT", "/v1/presence", { token: tokens.romeo, body: {} })).status, 200);
      // Juliet goes offline: both accounts hear it.
      await world.users.juliet.stop();
      for (const lp of ["lonely", "romeo"]) await waitFor(async () => !(await listed(tokens[lp]!)).includes("juliet@localhost"), WAIT, `${lp}: juliet gone`);

      // The link drops; Juliet comes back online meanwhile.
      const release = holdReconnect(gw);
      gw.running.link.xmpp.socket?.destroy();
      await waitFor(() => !gw.running.link.online, 10_000, "the link down");
      const again = await connectUser(server, "juliet", "pw-juliet", "again");
      world.users.juliet = again;
      await comeOnline(again);
      await new Promise((r) => setTimeout(r, 500));
      release();
      await waitFor(() => gw.running.link.online, 15_000, "the link back");

      // Romeo (a session) is probed again and lists her; so is Lonely.
      await waitFor(async () => (await listed(tokens.romeo!)).includes("juliet@localhost"), WAIT, "romeo: juliet listed again (control)");
      await waitFor(async () => (await listed(tokens.lonely!)).includes("juliet@localhost"), 10_000, "lonely (no session): juliet listed again");
    });
  });
}
