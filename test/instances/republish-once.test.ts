// After an XMPP server restart every instance's link comes up again (XMPP_LINK_MODE=all), and each
// rejoined every room and published every account's presence again: the same stanzas once per
// instance. Now the first instance up does it for all (src/db/link-republish.ts), and the others
// drain behind the joins it recorded. Three gateway processes on one database behind HAProxy, on
// ejabberd, each connected through one TCP relay that counts what they send; a real restart.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { api, createAccount } from "../../scripts/harness/cluster.js";
import { waitFor } from "../helpers/gateway.js";
import { MUC } from "../helpers/muc.js";
import { TcpRelay } from "../helpers/tcp-relay.js";
import { sleep, startTestbed, withReport, type Testbed } from "./helpers.js";

const ENV = { XMPP_LINK_MODE: "all", SESSION_GRACE_SECONDS: "600", RATE_LIMIT_PER_ACCOUNT: "0", RATE_LIMIT_PER_IP: "0" };
/** What a MUC join presence carries (XEP-0045 §7.2.2), as Balcony renders it. */
const JOIN = 'xmlns="http://jabber.org/protocol/muc"';
const REJOINED = "link up: rejoining the rooms and publishing presence again";
const LEFT_TO_ANOTHER = "link up: another instance rejoined the rooms and published presence after this link went down";

/** The join presences to `room` in what one connection sent: each presence, up to its end tag. */
function joinsTo(text: string, room: string): number {
  const presences = text.split("<presence").slice(1).map((p) => (p.includes("</presence>") ? p.slice(0, p.indexOf("</presence>")) : p));
  return presences.filter((p) => p.includes(`to="${room}/`) && p.includes(JOIN)).length;
}

describe("after an XMPP server restart one instance rejoins the rooms and publishes presence for all (ejabberd, XMPP_LINK_MODE=all)", () => {
  let bed: Testbed;
  let relay: TcpRelay;
  /** What the instances sent through the relay, per connection, since `sent.clear()`. */
  const sent = new Map<Socket, string>();
  before(async () => {
    bed = await startTestbed("ejabberd", { env: ENV });
    relay = new TcpRelay(bed.server.componentPort);
    relay.tap = (chunk, client) => sent.set(client, (sent.get(client) ?? "") + chunk.toString("utf8"));
    const port = await relay.listen();
    // Every instance again, connected through the relay.
    for (const i of [0, 1, 2]) {
      await bed.cluster.kill(i, "SIGTERM");
      await bed.cluster.restart(i, { XMPP_SERVICE: `xmpp://127.0.0.1:${port}` });
    }
    await bed.cluster.waitStable(30_000, "all");
  });
  after(async () => {
    relay?.close();
    await bed?.stop();
  });

  it("the rooms are joined once, one instance logs that it did, a group message posted during the restart is sent", () =>
    withReport(bed, "republish-once", async () => {
      const prefix = `r${randomBytes(3).toString("hex")}`;
      const token = await createAccount(bed.lb, prefix);
      const rooms = [`${prefix}-a@${MUC}`, `${prefix}-b@${MUC}`];
      for (const room of rooms) {
        const r = await api(bed.lb, "PUT", `/v1/rooms/${room}`, { token, body: { nick: prefix } });
        // 201, or 200 when HAProxy sent the PUT again (it may resend an idempotent method whose
        // answer it lost) and the first attempt had joined: either way the account made the room.
        assert.ok(r.status === 201 || r.status === 200, `join ${room}: ${r.status} ${JSON.stringify(r.body)}`);
        assert.deepEqual([r.body.status, r.body.affiliation], ["joined", "owner"], `join ${room}: ${JSON.stringify(r.body)}`);
      }
      const logLines = (text: string) => bed.cluster.instances.map((inst) => inst.proc!.output().split("\n").filter((l) => l.includes(text)).length);
      const [rejoinedBefore, leftBefore] = [logLines(REJOINED), logLines(LEFT_TO_ANOTHER)];

      sent.clear();
      await bed.server.restart();
      // Posted at once: the links are still coming back (their backoff), or just back.
      const posted = await api(bed.lb, "POST", "/v1/messages", { token, body: { to: rooms[0], type: "groupchat", body: `${prefix}: during the restart` } });
      assert.equal(posted.status, 202, JSON.stringify(posted.body));
      const id = (posted.body as { id: string }).id;
      await bed.cluster.waitStable(30_000, "all");
      let views: unknown[] = [];
      await waitFor(
        async () => {
          views = await Promise.all(rooms.map(async (room) => (await api(bed.lb, "GET", `/v1/rooms/${room}`, { token })).body));
          return views.every((v) => (v as { status?: string }).status === "joined");
        },
        20_000,
        "both rooms joined again",
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}: ${JSON.stringify(views)}`);
      });
      let status = "";
      await waitFor(async () => ["sent", "failed"].includes((status = (await api(bed.lb, "GET", `/v1/messages/${id}`, { token })).body.status as string)), 20_000, "the group message's final status");
      await sleep(1000); // any instance still about to rejoin has had its link back for a while

      const joins = rooms.map((room) => [...sent.values()].reduce((n, text) => n + joinsTo(text, room), 0));
      const rejoined = logLines(REJOINED).map((n, i) => n - rejoinedBefore[i]!);
      const left = logLines(LEFT_TO_ANOTHER).map((n, i) => n - leftBefore[i]!);
      console.log(`[republish-once] join presences sent per room after the restart: ${JSON.stringify(joins)}; instances that rejoined: ${JSON.stringify(rejoined)}, left it to another: ${JSON.stringify(left)}; group message: ${status}`);
      assert.equal(status, "sent", "the group message posted during the restart went out after the rejoin");
      assert.deepEqual(joins, [1, 1], "each room joined once after the restart, by one instance for all");
      assert.equal(rejoined.reduce((a, b) => a + b, 0), 1, `one instance rejoined and published presence: ${JSON.stringify(rejoined)}`);
      assert.equal(left.reduce((a, b) => a + b, 0), 2, `the other two left it to that one: ${JSON.stringify(left)}`);
    }));
});
