// A session whose grace (SESSION_GRACE_SECONDS) ran out while no gateway ran: at link-up the
// republish (src/services/presence.ts) announced it available again, and the first sweep (up to
// grace/4 later) unavailable. API.md: a session without a stream for the grace goes unavailable;
// the contact must hear nothing of it but that. Found by the presence audit of stop 64.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { startWorld, grantPresence, type XmppWorld } from "../helpers/xmpp-world.js";
import { KINDS } from "../helpers/servers.js";

const GRACE = 20;
const WAIT = 30_000;

for (const kind of KINDS) {
  describe(`a session whose grace ran out while the gateway was down (${kind})`, () => {
    let world: XmppWorld<"juliet">;
    before(async () => {
      world = await startWorld(kind, { juliet: "balcony" }, { roster: true, restartable: true, env: { SESSION_GRACE_SECONDS: String(GRACE) } });
    });
    after(async () => world?.stop());

    it("is not announced available again when the gateway comes back", async () => {
      const { users } = world;
      const juliet = users.juliet;
      await world.gw.createAccount("romeo");
      const romeo = `romeo@${world.gw.domain}`;
      await grantPresence(world.gw, "romeo", juliet);
      const token = world.gw.token("romeo", { resource: "desk" });
      const m0 = juliet.stanzas.length;
      assert.equal((await world.gw.request("PUT", "/v1/presence", { token, body: { status: "here" } })).status, 200);
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= m0 && s.is("presence") && s.attrs.from === `${romeo}/desk` && !s.attrs.type, WAIT);
      // No stream ever: the session's grace starts now. The gateway is down for longer than that.
      const mark = juliet.stanzas.length;
      await world.restartGateway(() => sleep((GRACE + 2) * 1000));
      const gone = await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && s.is("presence") && s.attrs.from === `${romeo}/desk` && s.attrs.type === "unavailable", WAIT);
      const between = juliet.stanzas.slice(mark, juliet.stanzas.indexOf(gone)).filter((s) => s.is("presence") && s.attrs.from === `${romeo}/desk`);
      assert.deepEqual(between.map((s) => s.toString()), [], "a session past its grace was announced available again after the restart");
    });
  });
}
