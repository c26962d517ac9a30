// A contact online on more resources than the gateway keeps of her (MAX_CONTACT_RESOURCES, 100):
// her least recently updated resource makes room. The table's trigger dropped it from GET
// /v1/presence with no unavailable event, so the account's streams, told it came online, kept it
// online. README: each resource a contact's stored presence loses gets an unavailable event, so
// streams and GET /v1/presence agree. Juliet really logs in 101 times. Found by the presence audit
// of stop 64.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { waitFor } from "../helpers/gateway.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 30_000;
type Ev = { id: number; event: string; data: { jid?: string; resource?: string | null; type?: string; self?: boolean } };

for (const kind of KINDS) {
  describe(`a contact on 101 resources (${kind})`, () => {
    let world: XmppWorld<"juliet">;
    const extra: XmppUser[] = [];
    before(async () => {
      world = await startWorld(kind, { juliet: "r000" }, { roster: true });
    });
    after(async () => {
      for (const u of extra) await u.stop();
      await world?.stop();
    });

    it("streams and GET /v1/presence agree on which of her resources are online", async () => {
      const { gw, users, server } = world;
      await gw.createAccount("romeo");
      const token = gw.token("romeo", { resource: "desk" });
      const romeo = `romeo@${gw.domain}`;
      assert.equal((await gw.request("POST", "/v1/roster/juliet@localhost/subscribe", { token })).status, 202);
      await users.juliet.waitFor((s) => s.is("presence") && s.attrs.type === "subscribe" && s.attrs.from === romeo, WAIT);
      await users.juliet.send(xml("presence", { to: romeo, type: "subscribed" }));
      const events = async () => (await gw.request("GET", "/v1/events?since=0&limit=1000", { token, headers: { accept: "application/json" } })).body.items as Ev[];
      await waitFor(async () => (await events()).some((e) => e.event === "presence" && e.data.resource === "r000" && e.data.type === "available"), WAIT, "r000 online");
      for (let i = 1; i <= 100; i++) {
        const u = await connectUser(server, "juliet", "pw-juliet", `r${String(i).padStart(3, "0")}`);
        extra.push(u);
        await u.sendPresence();
      }
      // Her resources online as the streams were told: the last event of each.
      const onlineByEvents = async () => {
        const last = new Map<string, string>();
        for (const e of await events()) if (e.event === "presence" && e.data.jid === "juliet@localhost" && !e.data.self) last.set(e.data.resource ?? "", e.data.type ?? "");
        return [...last].filter(([, t]) => t === "available").map(([r]) => r).sort();
      };
      await waitFor(async () => (await events()).some((e) => e.event === "presence" && e.data.resource === "r100" && e.data.type === "available"), WAIT, "r100 online");
      const shown = await onlineByEvents();
      const listed = (((await gw.request("GET", "/v1/presence", { token })).body.items as { jid: string; resources: { resource: string }[] }[]).find((i) => i.jid === "juliet@localhost")?.resources ?? []).map((r) => r.resource).sort();
      assert.equal(listed.length, 100, "100 of her resources kept");
      assert.ok(!listed.includes("r000"), "the least recently updated made room");
      assert.deepEqual(shown, listed, "the streams were told of each resource GET /v1/presence lists, and of no other");
    });
  });
}
