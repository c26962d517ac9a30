// The event log as SSE and JSON: XMPP in -> Postgres -> streams, replay without gap or duplicate.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import xml from "@xmpp/xml";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { waitFor, type TestGateway } from "../helpers/gateway.js";
import { startWorld, type XmppWorld, grantPresence } from "../helpers/xmpp-world.js";
import { gatewaySentinel } from "../helpers/sentinel.js";
import type { SseClient, SseEvent } from "../helpers/sse.js";
import { KINDS } from "../helpers/servers.js";

const bodyOf = (e: SseEvent) => (e.json as { body?: string }).body;

for (const kind of KINDS) {
  describe(`events (${kind})`, () => {
    let world: XmppWorld<"juliet">;
    let gw: TestGateway;
    let juliet: XmppUser;

    before(async () => {
      world = await startWorld(kind, { juliet: "balcony" }, { env: { SSE_HEARTBEAT: "300ms", SSE_RETRY: "1500ms" } });
      ({ gw } = world);
      juliet = world.users.juliet;
    });
    after(() => world?.stop());

    const say = (to: string, text: string, extra: Record<string, string> = {}, receipt = false) =>
      juliet.send(xml("message", { to, type: "chat", id: `j-${text}`, ...extra }, xml("body", {}, text), receipt ? xml("request", { xmlns: "urn:xmpp:receipts" }) : null));

    it("streams an inbound message as an SSE event with id, event and JSON data, plus retry and heartbeats", async () => {
      await gw.createAccount("romeo");
      const s = await gw.sse("/v1/events", gw.token("romeo"));
      assert.equal(s.status, 200);
      assert.match(s.headers?.get("content-type") ?? "", /text\/event-stream/);
      await say(`romeo@${gw.domain}`, "hello romeo");
      await s.waitFor((ev) => ev.some((e) => e.event === "message"), 5000, "message event");
      const e = s.events.find((x) => x.event === "message")!;
      assert.match(e.id ?? "", /^\d+$/);
      const data = e.json as { from: string; to: string; body: string; type: string };
      assert.equal(data.from, "juliet@localhost/balcony");
      assert.equal(data.to, `romeo@${gw.domain}`);
      assert.equal(data.body, "hello romeo");
      assert.equal(data.type, "chat");
      assert.equal(s.retry, 1500);
      await waitFor(() => s.comments.filter((c) => c === "heartbeat").length >= 2, 3000, "two heartbeats");
      await s.close();
    });

    it("spreads heartbeats over the interval, and every stream still gets one within it", async () => {
      await gw.createAccount("tybalt");
      const tok = gw.token("tybalt");
      const streams = await Promise.all(Array.from({ length: 16 }, (_, i) => gw.sse(`/v1/events?resource=h${i}`, tok)));
      const beats = (s: SseClient) => s.comments.filter((c) => c === "heartbeat").length;
      try {
        // One interval (300 ms), plus what this process's polling and a loaded machine add.
        const within = 300 + 150;
        await waitFor(() => streams.every((s) => beats(s) >= 1), within, "a first heartbeat on every stream");
        // From here, when does each stream get its next one?
        const seen = streams.map(beats);
        const next: (number | null)[] = streams.map(() => null);
        const t0 = performance.now();
        while (next.some((t) => t === null) && performance.now() - t0 < 3000) {
          for (const [i, s] of streams.entries()) if (next[i] === null && beats(s) > seen[i]!) next[i] = performance.now() - t0;
          await new Promise((r) => setTimeout(r, 2));
        }
        for (const [i, t] of next.entries()) assert.ok(t !== null && t <= within, `stream h${i}: next heartbeat after ${t === null ? "never" : Math.round(t)} ms`);
        // Moments at which they came, 10 ms or more apart: one burst for all would be one.
        const times = (next as number[]).sort((a, b) => a - b);
        const moments = 1 + times.slice(1).filter((t, i) => t - times[i]! >= 10).length;
        assert.ok(moments >= 8, `heartbeats came at ${moments} moments: ${times.map((t) => Math.round(t)).join(", ")} ms`);
      } finally {
        await Promise.all(streams.map((s) => s.close()));
      }
    });

    it("an HTTP/1.0 client's stream (not chunked) gets the same heartbeats and events, unframed", async () => {
      await gw.createAccount("balthasar");
      const { hostname, port } = new URL(gw.url);
      const socket = connect(Number(port), hostname);
      let raw = "";
      socket.setEncoding("utf8").on("data", (d: string) => (raw += d));
      await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
      try {
        socket.write(`GET /v1/events HTTP/1.0\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${gw.token("balthasar")}\r\n\r\n`);
        await waitFor(() => raw.split(": heartbeat\n\n").length > 2, 3000, "two heartbeats").catch((err: Error) => assert.fail(`${err.message}: ${JSON.stringify(raw)}`));
        await say(`balthasar@${gw.domain}`, "hello balthasar");
        await waitFor(() => raw.includes("hello balthasar"), 5000, "the message event");
        const [head, body] = raw.split("\r\n\r\n", 2) as [string, string];
        assert.match(head, /^HTTP\/1\.[01] 200/);
        assert.doesNotMatch(head, /transfer-encoding/i);
        // Only SSE lines: no chunk sizes between them (RFC 9112 §7.1 framing is HTTP/1.1's).
        const lines = body.split("\n").filter((l) => l !== "");
        const notSse = lines.filter((l) => !/^(retry|id|event|data): |^: /.test(l));
        assert.ok(lines.length > 0);
        assert.deepEqual(notSse, []);
      } finally {
        socket.destroy();
      }
    });

    it("resumes with Last-Event-ID while messages keep arriving: every message exactly once, in order", async () => {
      await gw.createAccount("mercutio");
      const tok = gw.token("mercutio", { resource: "phone" });
      const to = `mercutio@${gw.domain}`;
      const total = 60;
      const seen: SseEvent[] = [];
      let s = await gw.sse("/v1/events", tok);
      const sending = (async () => {
        for (let i = 0; i < total; i++) {
          await say(to, `m${i}`);
          await new Promise((r) => setTimeout(r, 8));
        }
      })();
      // Drop and resume the stream three times while the sender keeps going.
      for (let round = 0; round < 3; round++) {
        await s.waitFor((ev) => ev.filter((e) => e.event === "message").length >= 5, 10_000, "some messages");
        await s.close();
        seen.push(...s.events.filter((e) => e.event === "message"));
        await new Promise((r) => setTimeout(r, 40));
        s = await gw.sse("/v1/events", tok, { "last-event-id": s.lastEventId! });
      }
      await sending;
      await s.waitFor(() => seen.length + s.events.filter((e) => e.event === "message").length >= total, 10_000, "all messages");
      await s.close();
      seen.push(...s.events.filter((e) => e.event === "message"));
      assert.deepEqual(seen.map(bodyOf), Array.from({ length: total }, (_, i) => `m${i}`));
      const ids = seen.map((e) => Number(e.id));
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
      assert.equal(new Set(ids).size, ids.length);
    });

    it("keeps messages for an account with no session and delivers them on the first stream; answers receipts only then", async () => {
      await gw.createAccount("paris");
      await grantPresence(gw, "paris", juliet); // receipts go to a sender who may see the account's presence (XEP-0184 §8)
      const to = `paris@${gw.domain}`;
      await say(to, "while you were out", {}, true);
      await say(to, "second", {}, false);
      const receipts = (id: string) => juliet.stanzas.filter((st) => st.getChild("received", "urn:xmpp:receipts")?.attrs.id === id).length;
      // Both messages are stored and anything the gateway wrote on their account is in before the sentinel.
      await gatewaySentinel(juliet, gw.domain);
      assert.equal(receipts("j-while you were out"), 0, "no receipt before a stream has it");
      const s = await gw.sse("/v1/events", gw.token("paris"));
      await s.waitFor((ev) => ev.filter((e) => e.event === "message").length >= 2, 5000, "stored messages");
      assert.deepEqual(s.events.filter((e) => e.event === "message").map(bodyOf), ["while you were out", "second"]);
      const receipt = await juliet.waitFor((st) => st.getChild("received", "urn:xmpp:receipts")?.attrs.id === "j-while you were out");
      assert.equal(receipt.attrs.from, to);
      await s.close();
      // A second stream must not answer the receipt again.
      const again = await gw.sse("/v1/events?since=0", gw.token("paris"));
      await again.waitFor((ev) => ev.filter((e) => e.event === "message").length >= 2, 5000, "replay");
      // Sentinel: a new message asking for a receipt reaches the same stream after the replay, and the
      // stream answers receipts batch by batch, so a second receipt for the replayed message would
      // have been written before this one.
      await say(to, "sentinel", {}, true);
      await again.waitFor((ev) => ev.some((e) => bodyOf(e) === "sentinel"), 5000, "the sentinel on the second stream");
      await juliet.waitFor((st) => st.getChild("received", "urn:xmpp:receipts")?.attrs.id === "j-sentinel");
      await again.close();
      assert.equal(receipts("j-while you were out"), 1);
    });

    it("routes a message to a full JID to that session's streams only, and a bare-JID message to all (RFC 6121 §8.5)", async () => {
      await gw.createAccount("nurse");
      const tok = gw.token("nurse");
      const phone = await gw.sse("/v1/events?resource=phone", tok);
      const laptop = await gw.sse("/v1/events", tok, { "balcony-resource": "laptop" });
      assert.equal(laptop.headers?.get("balcony-resource"), "laptop");
      await waitFor(async () => (await gw.request("GET", "/v1/sessions", { token: tok })).body.items.length === 2, 5000, "two sessions");
      await say(`nurse@${gw.domain}/phone`, "phone only");
      await say(`nurse@${gw.domain}`, "everyone");
      await phone.waitFor((ev) => ev.some((e) => bodyOf(e) === "everyone"), 5000, "phone: everyone");
      await laptop.waitFor((ev) => ev.some((e) => bodyOf(e) === "everyone"), 5000, "laptop: everyone");
      assert.deepEqual(phone.events.filter((e) => e.event === "message").map(bodyOf), ["phone only", "everyone"]);
      assert.deepEqual(laptop.events.filter((e) => e.event === "message").map(bodyOf), ["everyone"]);
      await phone.close();
      await laptop.close();
    });

    it("names a session by the Balcony-Resource a stream sends back (percent-encoded UTF-8), whatever characters its resource has", async () => {
      await gw.createAccount("valentine");
      const tok = gw.token("valentine");
      const stream = await gw.sse(`/v1/events?resource=${encodeURIComponent("мой телефон")}`, tok);
      const header = stream.headers?.get("balcony-resource");
      assert.equal(header, encodeURIComponent("мой телефон"));
      assert.equal((await gw.request("PUT", "/v1/presence", { token: tok, body: {}, headers: { "balcony-resource": header! } })).status, 200);
      // A value that is no percent-encoding is the resource as sent.
      assert.equal((await gw.request("PUT", "/v1/presence", { token: tok, body: {}, headers: { "balcony-resource": "100% phone" } })).status, 200);
      const sessions = (await gw.request("GET", "/v1/sessions", { token: tok })).body.items.map((s: { resource: string }) => s.resource).sort();
      assert.deepEqual(sessions, ["100% phone", "мой телефон"]);
      await stream.close();
    });

    it("DELETE /v1/sessions/{resource} ends that session's open streams, and only those", async () => {
      await gw.createAccount("abraham");
      const tok = gw.token("abraham");
      const phone = [await gw.sse("/v1/events?resource=phone", tok), await gw.sse("/v1/events?resource=phone", tok)];
      const laptop = await gw.sse("/v1/events?resource=laptop", tok);
      await waitFor(async () => (await gw.request("GET", "/v1/sessions", { token: tok })).body.items.length === 2, 5000, "two sessions");
      assert.equal((await gw.request("DELETE", "/v1/sessions/phone", { token: tok })).status, 204);
      await waitFor(() => phone.every((s) => s.closed), 5000, "the phone session's two streams end");
      // The laptop's stream goes on: a message sent after the ending reaches it.
      await say(`abraham@${gw.domain}`, "after the ending");
      await laptop.waitFor((ev) => ev.some((e) => bodyOf(e) === "after the ending"), 5000, "laptop: still live");
      assert.equal(laptop.closed, false);
      const sessions = (await gw.request("GET", "/v1/sessions", { token: tok })).body.items.map((x: { resource: string }) => x.resource);
      assert.deepEqual(sessions, ["laptop"], "the ended session did not come back with its streams' close");
      await laptop.close();
    });

    it("DELETE /v1/accounts/{localpart} ends the account's open streams, and only its", async () => {
      await gw.createAccount("isaac");
      await gw.createAccount("jacob");
      const gone = [await gw.sse("/v1/events?resource=phone", gw.token("isaac")), await gw.sse("/v1/events?resource=laptop", gw.token("isaac"))];
      const kept = await gw.sse("/v1/events", gw.token("jacob"));
      assert.equal((await gw.request("DELETE", "/v1/accounts/isaac", { token: gw.adminToken })).status, 204);
      await waitFor(() => gone.every((s) => s.closed), 5000, "the deleted account's two streams end");
      // Another account's stream goes on: a message sent after the deletion reaches it.
      await say(`jacob@${gw.domain}`, "after the deletion");
      await kept.waitFor((ev) => ev.some((e) => bodyOf(e) === "after the deletion"), 5000, "jacob: still live");
      assert.equal(kept.closed, false);
      await kept.close();
    });

    it("serves the same log as JSON pages for pollers", async () => {
      await gw.createAccount("friar");
      const tok = gw.token("friar");
      for (let i = 0; i < 5; i++) await say(`friar@${gw.domain}`, `p${i}`);
      await waitFor(async () => (await gw.request("GET", "/v1/events?since=0", { token: tok })).body.items.length === 5, 5000, "5 events");
      const p1 = await gw.request("GET", "/v1/events?since=0&limit=3", { token: tok, headers: { accept: "application/json" } });
      assert.equal(p1.status, 200);
      assert.deepEqual(p1.body.items.map((e: { data: { body: string } }) => e.data.body), ["p0", "p1", "p2"]);
      const p2 = await gw.request("GET", `/v1/events?since=${p1.body.nextSince}&limit=3`, { token: tok });
      assert.deepEqual(p2.body.items.map((e: { data: { body: string } }) => e.data.body), ["p3", "p4"]);
      const p3 = await gw.request("GET", `/v1/events?since=${p2.body.nextSince}`, { token: tok });
      assert.equal(p3.body.items.length, 0);
      assert.equal(p3.body.nextSince, p2.body.nextSince);
      // The cursor is an integer like the ids it follows.
      assert.deepEqual([p1.body.nextSince, p3.body.nextSince], [p1.body.items[2].id, p2.body.items[1].id]);
      const bad = await gw.request("GET", "/v1/events?since=-1", { token: tok });
      assert.equal(bad.status, 400);
      const badHeader = await gw.request("GET", "/v1/events", { token: tok, headers: { "last-event-id": "x1" } });
      assert.equal(badHeader.status, 400);
      assert.equal(badHeader.body.code, "invalid-cursor");
    });

    it("a cursor that is no event id is 400 invalid-cursor in ?since= as in Last-Event-ID, in both views, and in ?since= beside a good Last-Event-ID", async () => {
      await gw.createAccount("abram");
      const tok = gw.token("abram");
      for (const accept of ["text/event-stream", "application/json"]) {
        for (const bad of ["abc", "-1", "1.5", "1e3", "9".repeat(19)]) {
          const r = await gw.request("GET", `/v1/events?since=${encodeURIComponent(bad)}`, { token: tok, headers: { accept } });
          assert.equal(r.status, 400, `${accept} since=${bad}: ${r.text}`);
          assert.deepEqual([r.body.code, r.body.field], ["invalid-cursor", "querystring.since"], `${accept} since=${bad}`);
        }
        const header = await gw.request("GET", "/v1/events", { token: tok, headers: { accept, "last-event-id": "abc" } });
        assert.deepEqual([header.status, header.body.code, header.body.field], [400, "invalid-cursor", "headers.last-event-id"], accept);
        // A good Last-Event-ID wins over ?since=, but does not hide a bad one.
        const both = await gw.request("GET", "/v1/events?since=abc", { token: tok, headers: { accept, "last-event-id": "0" } });
        assert.deepEqual([both.status, both.body.code, both.body.field], [400, "invalid-cursor", "querystring.since"], accept);
      }
      const ok = await gw.request("GET", "/v1/events?since=0", { token: tok, headers: { accept: "application/json" } });
      assert.equal(ok.status, 200, ok.text);
    });

    it("says the view depends on Accept (Vary: Accept, RFC 9110 §12.5.5) on the JSON view, the SSE view and a 406", async () => {
      await gw.createAccount("vary-accept");
      const tok = gw.token("vary-accept");
      const json = await gw.request("GET", "/v1/events", { token: tok, headers: { accept: "application/json" } });
      const refused = await gw.request("GET", "/v1/events", { token: tok, headers: { accept: "text/html" } });
      assert.deepEqual([json.status, json.headers.get("vary"), refused.status, refused.headers.get("vary")], [200, "Accept", 406, "Accept"]);
      const stream = await fetch(`${gw.url}/v1/events`, { headers: { authorization: `Bearer ${tok}`, accept: "text/event-stream" } });
      try {
        assert.deepEqual([stream.status, stream.headers.get("vary")], [200, "Accept"]);
      } finally {
        await stream.body?.cancel();
      }
    });

    it("the JSON view of a session: named by ?resource=, the Balcony-Resource header or the token's resource claim; none: the whole log", async () => {
      await gw.createAccount("lady");
      const tok = gw.token("lady");
      // Available sessions, so that a message to their full JID is theirs alone (RFC 6121 §8.5.3.1).
      for (const r of ["phone", "laptop"]) assert.equal((await gw.request("PUT", `/v1/presence?resource=${r}`, { token: tok })).status, 200);
      await say(`lady@${gw.domain}/phone`, "phone only");
      await say(`lady@${gw.domain}/laptop`, "laptop only");
      await say(`lady@${gw.domain}`, "everyone");
      const bodies = async (path: string, token: string, headers: Record<string, string> = {}) => {
        const r = await gw.request("GET", path, { token, headers: { accept: "application/json", ...headers } });
        assert.equal(r.status, 200, r.text);
        return r.body.items.filter((e: { event: string }) => e.event === "message").map((e: { data: { body: string } }) => e.data.body);
      };
      await waitFor(async () => (await bodies("/v1/events", tok)).length === 3, 5000, "3 messages in the log");
      assert.deepEqual(await bodies("/v1/events", tok), ["phone only", "laptop only", "everyone"], "nothing named: the account's whole log");
      assert.deepEqual(await bodies("/v1/events?resource=phone", tok), ["phone only", "everyone"]);
      assert.deepEqual(await bodies("/v1/events", tok, { "balcony-resource": "phone" }), ["phone only", "everyone"]);
      assert.deepEqual(await bodies("/v1/events", gw.token("lady", { resource: "laptop" })), ["laptop only", "everyone"]);
      assert.deepEqual(await bodies("/v1/events?resource=phone", gw.token("lady", { resource: "laptop" })), ["phone only", "everyone"], "?resource= first");
    });

    it("a JSON page answers the XEP-0184 receipts its messages asked for, once", async () => {
      await gw.createAccount("rosaline");
      await grantPresence(gw, "rosaline", juliet); // receipts go to a sender who may see the account's presence (XEP-0184 §8)
      const to = `rosaline@${gw.domain}`;
      const tok = gw.token("rosaline");
      const receipts = (id: string) => juliet.stanzas.filter((st) => st.getChild("received", "urn:xmpp:receipts")?.attrs.id === id);
      const poll = async (since: number) => {
        const r = await gw.request("GET", `/v1/events?since=${since}`, { token: tok, headers: { accept: "application/json" } });
        assert.equal(r.status, 200, r.text);
        return r.body as { items: { id: number; event: string; data: { body?: string } }[]; nextSince: number };
      };
      await say(to, "poll me", {}, true);
      // Stored, and anything the gateway wrote meanwhile is in before the sentinel: no receipt before a reader has it.
      await gatewaySentinel(juliet, gw.domain);
      assert.equal(receipts("j-poll me").length, 0);
      await waitFor(async () => (await poll(0)).items.some((e) => e.data.body === "poll me"), 5000, "the message on a page");
      const receipt = await juliet.waitFor((st) => st.getChild("received", "urn:xmpp:receipts")?.attrs.id === "j-poll me");
      assert.equal(receipt.attrs.from, to);
      // XEP-0184 §5: of the acknowledged message's type, and <received/> its only child (the server may add its own).
      assert.equal(receipt.attrs.type, "chat");
      assert.equal(receipt.getChild("origin-id", "urn:xmpp:sid:0"), undefined, receipt.toString());
      // Polled again, then a second message asking for one: its receipt comes after any second one for the first.
      assert.ok((await poll(0)).items.some((e) => e.data.body === "poll me"));
      await say(to, "sentinel", {}, true);
      await waitFor(async () => (await poll(0)).items.some((e) => e.data.body === "sentinel"), 5000, "the sentinel on a page");
      await juliet.waitFor((st) => st.getChild("received", "urn:xmpp:receipts")?.attrs.id === "j-sentinel");
      assert.equal(receipts("j-poll me").length, 1);
    });

    it("picks the view by content negotiation (RFC 9110 §12.5.1): q-values, wildcards, parameters", async () => {
      await gw.createAccount("peter");
      const view = async (accept: string) => {
        const abort = new AbortController();
        const res = await fetch(`${gw.url}/v1/events`, { headers: { authorization: `Bearer ${gw.token("peter")}`, accept }, signal: abort.signal });
        const type = res.headers.get("content-type") ?? "";
        abort.abort(); // an event stream never ends by itself
        await res.body?.cancel().catch(() => undefined);
        return res.status === 406 ? "406" : res.status === 200 && type.startsWith("text/event-stream") ? "sse" : res.status === 200 && type.startsWith("application/json") ? "json" : `${res.status} ${type}`;
      };
      const cases: [string, string][] = [
        ["text/event-stream", "sse"],
        ["application/json", "json"],
        ["*/*", "json"],
        ["application/*", "json"],
        ["text/*", "sse"],
        ["text/event-stream; charset=utf-8", "sse"],
        ["application/json;q=0.5, text/event-stream", "sse"],
        ["text/event-stream;q=0, application/json", "json"],
        ["text/event-stream;q=0", "406"],
        ["application/json;q=0", "406"],
        ["text/html", "406"],
      ];
      const got: [string, string][] = [];
      for (const [accept] of cases) got.push([accept, await view(accept)]);
      assert.deepEqual(got, cases);
    });

    it("streams every event once, in sequence, to every reader while concurrent writers race to commit", async () => {
      // Writers: 4 XMPP users each firing 50 messages at once (the inbound pipeline's transactions),
      // and 3 HTTP clients changing the roster meanwhile (transactions of their own). Readers: two
      // SSE streams and a JSON poller following the log from the start of a fresh account.
      const lp = "benvolio";
      await gw.createAccount(lp);
      const tok = gw.token(lp);
      const to = `${lp}@${gw.domain}`;
      const USERS = 4;
      const PER_USER = 50;
      // 3 roster workers: with the inbound batch they may hold 4 of the 5 pooled connections while
      // they queue on the account's row lock, leaving one for the readers.
      const WORKERS = 3;
      const CONTACTS_PER_WORKER = 14; // each pre-approved once: one roster event apiece
      const range = (n: number) => Array.from({ length: n }, (_, i) => i);
      const senders = await Promise.all(
        range(USERS).map(async (i) => {
          await world.server.registerUser(`sender${i}`, "pw");
          return connectUser(world.server, `sender${i}`, "pw", "burst");
        }),
      );
      const streams: SseClient[] = [await gw.sse("/v1/events?since=0&resource=reader-a", tok), await gw.sse("/v1/events?since=0&resource=reader-b", tok)];
      for (const st of streams) assert.equal(st.status, 200);
      const polled: { id: number; event: string; data: { body?: string } }[] = [];
      let stopPolling = false;
      const poller = (async () => {
        let since = "0";
        while (!stopPolling) {
          const r = await gw.request("GET", `/v1/events?since=${since}&limit=50`, { token: tok });
          assert.equal(r.status, 200, r.text);
          polled.push(...r.body.items);
          since = r.body.nextSince;
          if (r.body.items.length === 0) await new Promise((res) => setTimeout(res, 20));
        }
      })();
      try {
        const sent: string[] = [];
        const messaging = senders.map((u, i) =>
          Promise.all(
            range(PER_USER).map((k) => {
              const body = `burst-${i}-${k}`;
              sent.push(body);
              return u.send(xml("message", { to, type: "chat", id: body }, xml("body", {}, body)));
            }),
          ),
        );
        // Pre-approving a new contact appends exactly one roster event, and repeating it appends none
        // (RFC 6121 A.2.3), so a retry after a 5xx (its transaction may or may not have committed)
        // keeps the count exact. The retries are counted and printed: see the report on them.
        const retried: string[] = [];
        const rostering = range(WORKERS).map(async (w) => {
          for (let k = 0; k < CONTACTS_PER_WORKER; k++) {
            const contact = `contact-${w}-${k}@localhost`;
            for (let attempt = 1; ; attempt++) {
              const approve = await gw.request("POST", `/v1/roster/${contact}/approve`, { token: tok });
              if (approve.status >= 500 && attempt < 5) {
                retried.push(`${contact}: ${approve.status} ${approve.body?.code}`);
                continue;
              }
              assert.equal(approve.status, 200, approve.text);
              assert.deepEqual([approve.body.subscription, approve.body.approved], ["none", true]);
              break;
            }
          }
        });
        await Promise.all([...messaging, ...rostering]);
        if (retried.length) console.log(`events: ${retried.length} roster request(s) retried after a 5xx while the inbound burst held the account: ${retried.slice(0, 3).join("; ")}`);
        const expected = USERS * PER_USER + WORKERS * CONTACTS_PER_WORKER;
        // The log as stored: a fresh account's sequence is 1..N, N being everything the writers caused.
        const stored = async () =>
          (await gw.running.db.pool.query<{ seq: number; type: string }>("SELECT e.seq::int AS seq, e.type FROM event e WHERE e.account_id = (SELECT id FROM account WHERE localpart = $1) ORDER BY e.seq", [lp])).rows;
        await waitFor(async () => (await stored()).length >= expected, 60_000, `${expected} events stored`);
        // A sentinel event after all of them: once every reader has it, whatever it was going to
        // deliver before it (a late event, a duplicate) has been delivered too.
        assert.equal((await gw.request("PUT", "/v1/roster/sentinel@localhost", { token: tok, body: { name: "Sentinel" } })).status, 201);
        const rows = await stored();
        const n = expected + 1;
        assert.equal(rows.length, n, "everything the writers caused, and the sentinel, is in the log");
        assert.deepEqual(rows.map((r) => r.seq), range(n).map((i) => i + 1), "the stored sequence is 1..N without a gap");
        assert.equal(rows.filter((r) => r.type === "message").length, USERS * PER_USER);
        const ids = range(n).map((i) => i + 1);
        const last = (events: { id: string | number | null }[]) => events.some((e) => Number(e.id) === n);
        for (const [i, st] of streams.entries()) await st.waitFor((ev) => last(ev), 30_000, `stream ${i} to reach event ${n}`);
        await waitFor(() => last(polled), 30_000, `the poller to reach event ${n}`);
        const readers: [string, { id: number; body: string | undefined; event: string }[]][] = [
          ...streams.map((st, i): [string, { id: number; body: string | undefined; event: string }[]] => [`SSE stream ${i}`, st.events.map((e) => ({ id: Number(e.id), event: e.event, body: bodyOf(e) }))]),
          ["JSON poller", polled.map((e) => ({ id: e.id, event: e.event, body: e.data.body }))],
        ];
        for (const [name, seen] of readers) {
          assert.deepEqual(seen.map((e) => e.id), ids, `${name}: ids 1..${n}, strictly increasing, no gap, no duplicate`);
          assert.deepEqual(seen.filter((e) => e.event === "message").map((e) => e.body).sort(), [...sent].sort(), `${name}: every message sent, once`);
        }
      } finally {
        stopPolling = true;
        await poller;
        for (const st of streams) await st.close();
        for (const u of senders) await u.stop();
      }
    });

    it("sends a resync event first when the cursor is older than the retained log", async () => {
      await gw.createAccount("capulet");
      const tok = gw.token("capulet");
      for (let i = 0; i < 4; i++) await say(`capulet@${gw.domain}`, `r${i}`);
      await waitFor(async () => (await gw.request("GET", "/v1/events?since=0", { token: tok })).body.items.length === 4, 5000, "4 events");
      // Retention expired for the two oldest events.
      const all = (await gw.request("GET", "/v1/events?since=0", { token: tok })).body.items as { id: number }[];
      await gw.running.db.pool.query("DELETE FROM event WHERE seq <= $1 AND account_id = (SELECT id FROM account WHERE localpart = 'capulet')", [all[1]!.id]);
      const s = await gw.sse("/v1/events?since=0", tok);
      await s.waitFor((ev) => ev.filter((e) => e.event === "message").length >= 2, 5000, "kept events");
      assert.equal(s.events[0]!.event, "resync");
      assert.equal(Number(s.events[0]!.id), all[1]!.id);
      assert.deepEqual(s.events.slice(1).map(bodyOf), ["r2", "r3"]);
      await s.close();
      const fresh = await gw.sse(`/v1/events?since=${all[1]!.id}`, tok);
      await fresh.waitFor((ev) => ev.length >= 2, 5000, "no resync needed");
      assert.equal(fresh.events[0]!.event, "message");
      await fresh.close();
    });

    it("a cursor from a deleted account's log, before or past the new log's head, gets a resync from the new log's start, then every event: none skipped", async () => {
      const lp = `verona-${kind}`;
      await gw.createAccount(lp);
      const tok = gw.token(lp);
      const bodies = async (since: number) => ((await gw.request("GET", `/v1/events?since=${since}`, { token: tok })).body.items as { event: string; data: { body?: string } }[]).filter((e) => e.event === "message").map((e) => e.data.body);
      for (let i = 0; i < 5; i++) await say(`${lp}@${gw.domain}`, `old${i}`);
      await waitFor(async () => (await bodies(0)).length === 5, 5000, "5 events");
      const old = ((await gw.request("GET", "/v1/events?since=0", { token: tok })).body.items as { id: number }[]).map((e) => e.id);
      // One reader had all of the old log, one only its first two events.
      const cursors = { head: old[4]!, behind: old[1]! };
      assert.equal((await gw.request("DELETE", `/v1/accounts/${lp}`, { token: gw.adminToken })).status, 204);
      await gw.createAccount(lp);
      for (let i = 0; i < 4; i++) await say(`${lp}@${gw.domain}`, `new${i}`);
      await waitFor(async () => (await bodies(0)).length === 4, 5000, "the new log's 4 events");
      const ids = ((await gw.request("GET", "/v1/events?since=0", { token: tok })).body.items as { id: number; event: string }[]).filter((e) => e.event === "message").map((e) => e.id);
      assert.ok(ids[0]! > cursors.head + 1, `the new log's first event (${ids[0]}) is numbered past the old log's head (${cursors.head}), with a gap`);
      const from = ids[0]! - 1;
      for (const [name, cursor] of Object.entries(cursors)) {
        const polled = await gw.request("GET", `/v1/events?since=${cursor}`, { token: tok, headers: { accept: "application/json" } });
        const page = polled.body.items as { id: number; event: string; data: { from?: number; body?: string } }[];
        assert.deepEqual(page.map((e) => (e.event === "resync" ? `resync ${e.data.from}` : e.data.body)), [`resync ${from}`, "new0", "new1", "new2", "new3"], `${name}: ${polled.text}`);
      }
      const s = await gw.sse("/v1/events", tok, { "last-event-id": String(cursors.behind) });
      await say(`${lp}@${gw.domain}`, "new4");
      await s.waitFor((ev) => ev.some((e) => bodyOf(e) === "new4"), 5000, "the live one");
      assert.deepEqual(s.events.map((e) => (e.event === "resync" ? `resync ${(e.json as { from: number }).from}` : bodyOf(e))), [`resync ${from}`, "new0", "new1", "new2", "new3", "new4"]);
      await s.close();
    });
  });
}
