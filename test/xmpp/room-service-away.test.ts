// ejabberd's MUC service away for a while (mod_muc taken out of the configuration and reloaded,
// the component link up): the account's rooms drop it (332), the gateway rejoins at once, and
// ejabberd answers that rejoin auth/forbidden ("Access denied by service policy"), as it answers a
// ban. Found by the group chat audit of stop 65: the join failed for good, the room forgotten, and
// nothing rejoined when the service came back. Now a rejoin's forbidden is taken for a refusal for
// now a few times (src/domain/muc.ts FORBIDDEN_REJOIN_TRIES), and the join lasts (API.md: until DELETE).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { waitFor } from "../helpers/gateway.js";
import { enterRoom, heardInRoom, MUC, roomWorld } from "../helpers/muc.js";
import { accountDriver } from "../helpers/account-driver.js";

const WAIT = 15_000;

describe("the MUC service away a while (ejabberd)", () => {
  const w = roomWorld("ejabberd");

  it("the account is in the room again once the service is back; the join never failed for good", async () => {
    const room = `phoenix@${MUC}`;
    await enterRoom(w.juliet, room, "juliet", { "muc#roomconfig_persistentroom": "1" });
    const a = await accountDriver(w.gw);
    assert.equal((await a.call("PUT", `/v1/rooms/${room}`, { nick: a.lp })).status, 200);
    const file = join(w.server.workDir, "config", "ejabberd.yml");
    const original = await readFile(file, "utf8");
    const without = original.replace(/\n {2}mod_muc:\n( {4}.*\n| {6}.*\n)*/, "\n");
    assert.notEqual(without, original);
    const reload = async () => {
      const r = await fetch(`${w.server.httpApiUrl}/reload_config`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      assert.equal(r.status, 200, await r.text());
    };
    const mark = w.juliet.stanzas.length;
    await writeFile(file, without);
    await reload();
    await w.juliet.waitFor((s) => w.juliet.stanzas.indexOf(s) >= mark && s.is("presence") && s.attrs.from === `${room}/juliet` && s.attrs.type === "unavailable", WAIT);
    // The gateway's rejoin meets no service, and is refused: for now.
    const refused = await a.until("the rejoin refused", (e) => e.event === "room" && e.data.kind === "join-failed");
    assert.equal((refused.data.error as { condition: string }).condition, "forbidden", JSON.stringify(refused.data));
    assert.ok(typeof refused.data.retryAt === "string", `tried again later: ${JSON.stringify(refused.data)}`);
    assert.equal((await a.call("GET", `/v1/rooms/${room}`)).body.status, "joining", "still the account's room");
    await writeFile(file, original);
    await reload();
    await waitFor(async () => (await a.call("GET", `/v1/rooms/${room}`)).body.status === "joined", 60_000, "joined again");
    await enterRoom(w.juliet, room, "juliet");
    await heardInRoom(w.gw, w.juliet, a.lp, room, "back after the service", WAIT);
  });
});
