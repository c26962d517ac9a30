// A gateway in XMPP_LINK_MODE=all started on a database where one in single mode holds the link
// (a rolling switch of modes, found by the sending audit of stop 65: both sent every message, 20
// accepted messages went out as 22 stanzas). It does not start: the start fails with one clear
// reason, and the holder's messages go out once each. The lease's rules themselves are in
// test/services/link-modes.test.ts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { LinkModeConflict } from "../../src/services/link-control.js";
import { accountDriver } from "../helpers/account-driver.js";
import { startTestGateway, uniq } from "../helpers/gateway.js";
import { gatewaySentinel, receivedFrom } from "../helpers/sentinel.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

describe("XMPP_LINK_MODE=all beside a single-mode holder (ejabberd)", () => {
  let world: XmppWorld<"juliet">;
  before(async () => {
    world = await startWorld("ejabberd", { juliet: "balcony" });
  });
  after(() => world?.stop());

  it("does not start, saying why; the holder's messages go out once each", async () => {
    await assert.rejects(startTestGateway(world.server, { XMPP_LINK_MODE: "all" }, world.gw.db), (err: unknown) => err instanceof LinkModeConflict);
    const r = await accountDriver(world.gw);
    const juliet = world.users.juliet;
    const start = juliet.stanzas.length;
    const bodies = [1, 2, 3, 4].map((i) => uniq(`once ${i} `));
    for (const body of bodies) await r.send({ to: "juliet@localhost", body });
    await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= start && s.is("message") && s.getChildText("body") === bodies.at(-1), 10_000);
    const end = await gatewaySentinel(juliet, world.gw.domain);
    const got = receivedFrom(juliet, r.jid, start, end).filter((s) => s.is("message")).map((s) => s.getChildText("body"));
    assert.deepEqual(got, bodies);
  });
});
