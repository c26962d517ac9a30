// The ends of sessions (DELETE /v1/sessions/{resource}) an instance did not hear in time
// (src/services/ended-sessions.ts, EventFeed.resume/loadEnds), against a real PostgreSQL: the feed
// here is hooked to no listener, so an end committed through Sessions.end is one it missed until
// the test says it heard it (endStreams) or reads the table (loadEnds).
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { EventNotifier } from "../../src/db/event-notifier.js";
import { appendEvents } from "../../src/db/events.js";
import { Notifications } from "../../src/db/notify.js";
import { event } from "../../src/domain/events.js";
import { EventFeed, type Follower } from "../../src/services/events.js";
import { StreamSlots } from "../../src/services/local-stream-slots.js";
import { setup, teardown, waitFor, within, type Env, type TestAccount } from "./setup.js";

describe("ended sessions an instance did not hear of in time", () => {
  let env: Env;
  let notifications: Notifications;
  let feed: EventFeed;

  before(async () => {
    env = await setup();
    notifications = new Notifications(env.tdb.url, (m, err) => env.log.warn({ err: String(err ?? "") }, m));
    await notifications.start();
    feed = new EventFeed(env.db, env.sessions, new EventNotifier(notifications), env.delivery, new StreamSlots(10), env.domain, 3_600_000, undefined, 60);
  });
  after(async () => {
    await feed?.idle();
    await notifications?.stop();
    await teardown(env);
  });
  beforeEach(() => env.clean());

  const end = (a: TestAccount, resource: string) => env.db.transaction((tx) => env.sessions.end(tx, a.id, resource));
  const sessions = async (a: TestAccount) => (await env.sessions.list(a.id)).map((s) => s.resource).sort();
  /** Whether the follower's stream has ended (its iterator is done), failing fast if it goes on. */
  const ended = async (f: Follower) => (await within(f[Symbol.asyncIterator]().next(), "the stream's next step", 1000).catch(() => ({ done: false }))).done === true;
  /** A session that had a stream, closed again (its row stays). */
  async function hadStream(a: TestAccount, resource: string): Promise<void> {
    (await feed.open(a, resource, null)).close();
    await feed.idle();
  }

  it("a resume whose open comes after a DELETE this instance had not heard of is refused, and the session its open made is gone again", async () => {
    const a = await env.account("race");
    await hadStream(a, "phone");
    await end(a, "phone");
    // The window: the end is committed, this instance has not heard it, so the check lets it by.
    assert.equal(await feed.resumesEndedSession(a.id, "phone", null), false, "not heard of here");
    assert.equal(await feed.resume(a, "phone", 0, null), null, "refused once its open finds the end");
    assert.deepEqual(await sessions(a), [], "the session it opened again is gone");
    // A new login (a credential issued after the end) resumes as before.
    const later = await feed.resume(a, "phone", 0, Date.now() + 2000);
    assert.ok(later, "a credential issued after the end");
    assert.deepEqual(await sessions(a), ["phone"]);
    later.close();
    // A resume of a session never ended that has no row (a new one) opens it.
    const fresh = await feed.resume(a, "tablet", 0, null);
    assert.ok(fresh, "a session never ended");
    fresh.close();
    await feed.idle();
    assert.deepEqual(await sessions(a), ["phone", "tablet"]);
  });

  it("a resume that finds the session opened again since the end (a presence set on it) is served: its open made no row", async () => {
    const a = await env.account("back");
    await hadStream(a, "phone");
    await end(a, "phone");
    await env.db.transaction((tx) => env.sessions.setPresence(tx, a.id, "phone", { available: true, show: null, status: null, priority: 0 }));
    const f = await feed.resume(a, "phone", 0, null);
    assert.ok(f, "the client came back: the session is its again");
    f.close();
    await feed.idle();
    assert.deepEqual(await sessions(a), ["phone"]);
  });

  it("an end heard while a stream's open is under way ends that stream, as it ends those already open; an open that made the session after the end is kept", async () => {
    const a = await env.account("inflight");
    await hadStream(a, "phone");
    const opening = feed.open(a, "phone", null);
    feed.endStreams(a.id, "phone");
    const phone = await opening;
    assert.equal(await ended(phone), true, "the stream on the ended session");
    // This open finds no session: it made it after the end, it is the session's return.
    const tabletOpening = feed.open(a, "tablet", null);
    feed.endStreams(a.id, "tablet");
    const tablet = await tabletOpening;
    assert.equal(await ended(tablet), false, "the stream that opened the session again");
    tablet.close();
    await feed.idle();
  });

  it("loadEnds reads the ends this instance missed: their resumes are refused, and its streams still open on them end", async () => {
    const a = await env.account("missed");
    const phone = await feed.open(a, "phone", null);
    const desk = await feed.open(a, "desk", null);
    await end(a, "phone");
    assert.equal(await feed.resumesEndedSession(a.id, "phone", null), false, "not heard of here");
    await feed.loadEnds();
    assert.equal(await feed.resumesEndedSession(a.id, "phone", null), true, "read from the table");
    assert.equal(await ended(phone), true, "the ended session's stream");
    assert.equal(await ended(desk), false, "another session's stream goes on");
    desk.close();
    await feed.idle();
  });

  it("an end heard while the open that made the session is under way, committed after that open, ends its stream", async () => {
    const a = await env.account("firstopen");
    // Something to replay: the open reads where to start (replayStarts) after its statement.
    await env.db.transaction((tx) => appendEvents(tx, [{ accountId: a.id, ...event("roster", { jid: "x@example.net", removed: true, ver: "1" }) }]));
    const c = new pg.Client({ connectionString: env.tdb.url });
    await c.connect();
    await c.query("BEGIN");
    await c.query("LOCK TABLE event IN ACCESS EXCLUSIVE MODE"); // the open waits there, its row made
    let opening: Promise<Follower>;
    try {
      opening = feed.open(a, "tablet", 0);
      await waitFor(async () => (await sessions(a)).length > 0, "the open's session row");
      assert.ok(await end(a, "tablet"), "the DELETE ended the session the open made");
      feed.endStreams(a.id, "tablet"); // its NOTIFY, heard while the open waits
    } finally {
      await c.query("COMMIT");
      await c.end();
    }
    const tablet = await opening!;
    assert.deepEqual(await sessions(a), [], "nothing opened it again");
    assert.equal(await ended(tablet), true, "the stream on the ended session");
  });
});
