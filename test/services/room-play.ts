// The room as the service tests of group chat play it (test/services/rooms.test.ts,
// room-presence.test.ts): its presence and subject message to the account's occupant JID, parsed
// as the XMPP adapter would parse them, through the suite's Inbound; and the account's room events.
// roomSuite() is those suites' setup.
import { after, before, beforeEach } from "node:test";
import { mucPresence } from "../../src/domain/muc.js";
import type { Inbound } from "../../src/services/inbound.js";
import { Rooms } from "../../src/services/rooms.js";
import { inboundOf, setup, teardown, type Env, type TestAccount } from "./setup.js";
import { inboundMessage, inboundPresence } from "./stanzas.js";

export interface RoomSuite {
  env: Env;
  inbound: Inbound;
  rooms: Rooms;
}

/**
 * A group-chat service suite's hooks: before its tests a fresh env, its Inbound and a Rooms,
 * handed to `use`; each test starts clean; after them the inbound batches finish and the database
 * goes. Returns the play of `room` for that suite.
 */
export function roomSuite(room: string, use: (s: RoomSuite) => void) {
  let s: RoomSuite | undefined;
  before(async () => {
    const env = await setup();
    s = { env, inbound: inboundOf(env), rooms: new Rooms(env.db, env.delivery, env.domain) };
    use(s);
  });
  after(async () => {
    await s?.inbound.idle();
    await teardown(s?.env);
  });
  beforeEach(() => s!.env.clean());
  return roomPlay(() => s!.env, () => s!.inbound, room);
}

/** An occupant's <item/> (role, affiliation, real JID) as the room presents it. */
export type MucItem = Parameters<typeof mucPresence>[0] & object;

/** `env` and `inbound` are read when a helper runs (suites make them in before()). */
export function roomPlay(env: () => Env, inbound: () => Inbound, room: string) {
  return {
    /** The room's presence from `nick` to the account's occupant JID (statuses: XEP-0045 §17.1). */
    async says(a: TestAccount, nick: string, item: MucItem, statuses: number[] = [], type = "available"): Promise<void> {
      inbound().receive(inboundPresence(`${room}/${nick}`, `${a.jid}/rooms`, type, { muc: mucPresence(item, statuses.map(String)) }));
      await inbound().idle();
    },
    /** The room's subject message (§7.2.16: the last stanza of a join; "" when it has none). */
    async subject(a: TestAccount, subject: string): Promise<void> {
      inbound().receive(inboundMessage(room, `${a.jid}/rooms`, { type: "groupchat", id: null, subject }));
      await inbound().idle();
    },
    /** The account's `room` events after `after`, as their data. */
    events: async (a: TestAccount, after = 0) => (await env().events(a.id, after)).filter((e) => e.type === "room").map((e) => e.data as Record<string, unknown>),
    /** The account's log head. */
    lastSeq: async (a: TestAccount) => (await env().events(a.id)).at(-1)?.seq ?? 0,
  };
}
