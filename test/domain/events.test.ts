// The event catalogue, without a server: each event type's schema accepts a valid sample and
// refuses broken ones (through checkEvent, the check every integration test applies to what the
// gateway emits), the JSON/SSE item is a oneOf discriminated by `event` with one branch per type,
// and the committed OpenAPI document shows that oneOf for GET /v1/events.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { EVENT_SCHEMAS, EVENT_TYPES, EventItemSchema, type EventData, type EventType } from "../../src/domain/events.js";
import { assertNoSchemaMismatches, checkEvent, checkEventItem, schemaMismatches } from "../helpers/event-schema.js";
import { SseClient } from "../helpers/sse.js";
import { freePort } from "../../scripts/harness/ports.js";

const UUID = "6f1c3e52-8a0b-4c1e-9d2f-0a1b2c3d4e5f";
const NOW = "2024-05-01T12:34:56.789Z";

/** Valid samples, typed by the catalogue so they cannot drift from it silently. */
const VALID: { [T in EventType]: EventData<T>[] } = {
  message: [
    {
      id: UUID,
      from: "juliet@localhost/balcony",
      to: "romeo@balcony.localhost",
      type: "chat",
      body: "hello",
      subject: null,
      thread: null,
      lang: null,
      state: null,
      receiptRequested: false,
      stanzaId: "j-1",
      createdAt: NOW,
    },
    {
      id: UUID,
      from: "juliet@localhost/balcony",
      to: "romeo@balcony.localhost/phone",
      type: "normal",
      body: { en: "hello", it: "ciao" },
      subject: "greeting",
      thread: "t1",
      lang: "en",
      state: "active",
      receiptRequested: true,
      stanzaId: null,
      createdAt: NOW,
    },
    {
      id: UUID,
      from: "lobby@conference.localhost/juliet",
      to: "romeo@balcony.localhost/rooms",
      type: "groupchat",
      body: "hi all",
      subject: null,
      thread: null,
      lang: null,
      state: null,
      receiptRequested: false,
      stanzaId: "g-1",
      createdAt: NOW,
      room: "lobby@conference.localhost",
      nick: "juliet",
      own: false,
      delay: "2024-05-01T12:00:00Z",
    },
  ],
  presence: [
    { jid: "juliet@localhost", from: "juliet@localhost/balcony", resource: "balcony", type: "available", show: null, status: null, priority: 0 },
    { jid: "juliet@localhost", from: "juliet@localhost/balcony", resource: "balcony", type: "available", show: "away", status: { en: "Sleeping" }, priority: -1, to: "romeo@balcony.localhost/phone" },
  ],
  subscription: [{ jid: "juliet@localhost", type: "subscribe" }, { jid: "juliet@localhost", type: "unsubscribed", status: "bye" }],
  roster: [
    { item: { jid: "juliet@localhost", name: null, groups: [], subscription: "both", ask: null, approved: false }, ver: "3" },
    { jid: "juliet@localhost", removed: true, ver: "4" },
  ],
  receipt: [{ id: UUID, from: "juliet@localhost/balcony", status: "delivered" }],
  "message-status": [{ id: UUID, status: "failed", error: { type: "cancel", condition: "service-unavailable" } }],
  "message-update": [
    {
      id: UUID,
      direction: "out",
      from: "romeo@balcony.localhost/phone",
      to: "juliet@localhost",
      type: "chat",
      body: "hello, corrected",
      subject: null,
      thread: null,
      lang: null,
      state: null,
      receipt: false,
      status: "delivered",
      cursor: "42",
      createdAt: NOW,
      updatedAt: NOW,
      edited: NOW,
      retracted: null,
      reactions: { "👍": ["juliet@localhost"] },
      replyTo: { id: UUID },
      attachments: [{ url: "https://files.example/a.png", mediaType: "image/png", size: 10 }],
      marker: "displayed",
    },
  ],
  resync: [{ reason: "cursor older than the retained event log", from: 3 }],
  room: [
    { room: "lobby@conference.localhost", kind: "occupant-joined", nick: "juliet", role: "participant", affiliation: "none", jid: null },
    { room: "lobby@conference.localhost", kind: "kicked", nick: "romeo", self: true, reason: "behave" },
    { room: "lobby@conference.localhost", kind: "invited", from: "juliet@localhost/balcony", reason: null, password: null, via: "direct" },
  ],
};

type Sample = Record<string, unknown>;
const extra = (s: unknown): Sample => ({ ...(s as Sample), surprise: 1 });
const set = (s: unknown, key: string, value: unknown): Sample => ({ ...(s as Sample), [key]: value });
const drop = (s: unknown, key: string): Sample => {
  const copy = { ...(s as Sample) };
  delete copy[key];
  return copy;
};

/** Broken samples: an extra property, a wrong literal (or value), a missing required field. */
const BROKEN: { [T in EventType]: [string, unknown][] } = {
  message: [
    ["extra property", extra(VALID.message[0])],
    ["wrong literal type", set(VALID.message[0], "type", "shout")],
    ["wrong chat state", set(VALID.message[0], "state", "typing")],
    ["missing receiptRequested", drop(VALID.message[0], "receiptRequested")],
    ["id not a uuid", set(VALID.message[0], "id", "not-a-uuid")],
    ["createdAt not a date-time", set(VALID.message[0], "createdAt", "yesterday")],
    ["body a number", set(VALID.message[0], "body", 42)],
  ],
  presence: [
    ["extra property", extra(VALID.presence[0])],
    ["wrong literal type", set(VALID.presence[0], "type", "probe")],
    ["wrong literal show", set(VALID.presence[0], "show", "busy")],
    ["missing priority", drop(VALID.presence[0], "priority")],
    ["priority out of range", set(VALID.presence[0], "priority", 128)],
  ],
  subscription: [
    ["extra property", extra(VALID.subscription[0])],
    ["wrong literal type", set(VALID.subscription[0], "type", "subscribe-please")],
    ["missing jid", drop(VALID.subscription[0], "jid")],
  ],
  roster: [
    ["extra property", extra(VALID.roster[0])],
    ["extra property in the item", set(VALID.roster[0], "item", extra((VALID.roster[0] as Sample).item))],
    ["wrong literal subscription", set(VALID.roster[0], "item", set((VALID.roster[0] as Sample).item, "subscription", "mutual"))],
    ["wrong literal removed", set(VALID.roster[1], "removed", false)],
    ["missing ver", drop(VALID.roster[1], "ver")],
    ["ver a number", set(VALID.roster[0], "ver", 3)],
  ],
  receipt: [
    ["extra property", extra(VALID.receipt[0])],
    ["wrong literal status", set(VALID.receipt[0], "status", "read")],
    ["missing from", drop(VALID.receipt[0], "from")],
  ],
  "message-update": [
    ["extra property", extra(VALID["message-update"][0])],
    ["unknown marker", set(VALID["message-update"][0], "marker", "seen")],
    ["reactions not lists", set(VALID["message-update"][0], "reactions", { "👍": "juliet@localhost" })],
    ["missing edited", drop(VALID["message-update"][0], "edited")],
    ["attachment without url", set(VALID["message-update"][0], "attachments", [{ name: "a.png" }])],
  ],
  "message-status": [
    ["extra property", extra(VALID["message-status"][0])],
    ["wrong literal status", set(VALID["message-status"][0], "status", "sent")],
    ["missing error", drop(VALID["message-status"][0], "error")],
    ["error without condition", set(VALID["message-status"][0], "error", { type: "cancel" })],
  ],
  resync: [
    ["extra property", extra(VALID.resync[0])],
    ["from a string", set(VALID.resync[0], "from", "3")],
    ["from negative", set(VALID.resync[0], "from", -1)],
    ["missing reason", drop(VALID.resync[0], "reason")],
  ],
  room: [
    ["extra property", extra(VALID.room[0])],
    ["wrong literal kind", set(VALID.room[0], "kind", "exploded")],
    ["missing room", drop(VALID.room[0], "room")],
  ],
};

describe("event catalogue", () => {
  for (const type of EVENT_TYPES) {
    it(`${type}: valid samples pass, broken ones fail`, () => {
      for (const sample of VALID[type]) assert.equal(checkEvent(type, sample), null, JSON.stringify(sample));
      const broken = BROKEN[type];
      for (const kind of ["extra property", "missing "]) assert.ok(broken.some(([what]) => what.startsWith(kind)), `${type}: a "${kind}" case`);
      for (const [what, sample] of broken) {
        const mismatch = checkEvent(type, sample);
        assert.equal(typeof mismatch, "string", `${type} with ${what} was accepted: ${JSON.stringify(sample)}`);
        assert.ok(mismatch!.startsWith(`${type}: `), mismatch!);
      }
    });
  }

  it("refuses unknown event types and data that is no object", () => {
    assert.match(checkEvent("typing", { jid: "juliet@localhost" }) ?? "", /unknown event type "typing"/);
    assert.match(checkEvent("toString", {}) ?? "", /unknown event type/);
    for (const type of EVENT_TYPES) {
      assert.notEqual(checkEvent(type, undefined), null, `${type}: undefined data`);
      assert.notEqual(checkEvent(type, "null"), null, `${type}: a string`);
    }
    // A sample valid for one type is not valid for another.
    assert.notEqual(checkEvent("receipt", VALID["message-status"][0]), null);
    assert.notEqual(checkEvent("message-status", VALID.receipt[0]), null);
  });

  it("checks JSON page items: envelope and data", () => {
    const item = { id: 7, event: "receipt", data: VALID.receipt[0], createdAt: NOW };
    assert.equal(checkEventItem(item), null);
    assert.match(checkEventItem({ ...item, id: "7" }) ?? "", /\/id/);
    assert.match(checkEventItem({ ...item, id: 7.5 }) ?? "", /\/id/);
    assert.match(checkEventItem({ ...item, createdAt: 7 }) ?? "", /\/createdAt/);
    assert.notEqual(checkEventItem({ ...item, createdAt: "not a date" }), null);
    assert.notEqual(checkEventItem({ ...item, extra: true }), null);
    assert.notEqual(checkEventItem(drop(item, "data")), null);
    assert.match(checkEventItem({ ...item, event: "nope" }) ?? "", /unknown event type/);
    assert.match(checkEventItem({ ...item, data: { ...VALID.receipt[0], status: "read" } }) ?? "", /^receipt: /);
  });

  it("describes the item as a oneOf with one branch per event type, discriminated by event", () => {
    const schema = EventItemSchema as unknown as { oneOf: { properties: Record<string, { const?: unknown }>; additionalProperties: unknown }[]; discriminator: { propertyName: string } };
    assert.equal(schema.discriminator.propertyName, "event");
    assert.equal(schema.oneOf.length, EVENT_TYPES.length);
    assert.deepEqual(
      schema.oneOf.map((b) => b.properties.event!.const),
      EVENT_TYPES,
    );
    for (const [i, type] of EVENT_TYPES.entries()) {
      const branch = schema.oneOf[i]!;
      assert.equal(branch.properties.data, EVENT_SCHEMAS[type], `${type}: the branch's data is the catalogue's schema`);
      assert.deepEqual(Object.keys(branch.properties).sort(), ["createdAt", "data", "event", "id"]);
      assert.equal(branch.additionalProperties, false);
    }
  });

  it("is what the committed OpenAPI document shows for GET /v1/events", () => {
    type Node = Record<string, unknown>;
    const doc = JSON.parse(readFileSync(new URL("../../openapi/openapi.json", import.meta.url), "utf8")) as Node;
    const resolve = (n: unknown): Node => {
      let node = n as Node;
      for (let hops = 0; typeof node?.$ref === "string"; hops++) {
        assert.ok(hops < 10, "a $ref cycle");
        const ref = node.$ref as string;
        assert.ok(ref.startsWith("#/"), `local $ref: ${ref}`);
        node = ref
          .slice(2)
          .split("/")
          .reduce<unknown>((at, key) => (at as Node | undefined)?.[key.replace(/~1/g, "/").replace(/~0/g, "~")], doc) as Node;
        assert.ok(node, `unresolved $ref ${ref}`);
      }
      return node;
    };
    const at = (n: unknown, ...keys: string[]): Node => {
      let node = resolve(n);
      for (const key of keys) {
        assert.ok(node && key in node, `OpenAPI: no ${key} (${keys.join(".")})`);
        node = resolve(node[key]);
      }
      return node;
    };
    const page = at(doc, "paths", "/v1/events", "get", "responses", "200", "content", "application/json", "schema");
    const item = at(page, "properties", "items", "items");
    assert.deepEqual(item.discriminator, { propertyName: "event" });
    const branches = (item.oneOf as unknown[]).map(resolve);
    assert.equal(branches.length, EVENT_TYPES.length);
    const meaningful = (s: Node) => Object.keys(s).filter((k) => !["title", "description", "$id"].includes(k));
    for (const [i, type] of EVENT_TYPES.entries()) {
      const branch = branches[i]!;
      const props = at(branch, "properties");
      const event = resolve(props.event);
      assert.deepEqual(event.const !== undefined ? [event.const] : event.enum, [type], `branch ${i} is ${type}`);
      assert.deepEqual((branch.required as string[]).slice().sort(), ["createdAt", "data", "event", "id"]);
      assert.equal(resolve(props.id).type, "integer");
      const data = resolve(props.data);
      assert.ok(meaningful(data).length > 0, `${type}: data documented as an empty schema`);
      const expected = EVENT_SCHEMAS[type] as unknown as Node;
      if (expected.properties) {
        assert.deepEqual(Object.keys(data.properties as Node).sort(), Object.keys(expected.properties as Node).sort(), `${type}: documented properties`);
        assert.deepEqual(((data.required as string[]) ?? []).slice().sort(), ((expected.required as string[]) ?? []).slice().sort(), `${type}: documented required`);
        assert.equal(data.additionalProperties, false, `${type}: closed object`);
      } else {
        assert.equal((data.anyOf as unknown[] | undefined)?.length, (expected.anyOf as unknown[]).length, `${type}: documented union`);
      }
    }
  });
});

describe("SseClient", () => {
  it("parses as EventSource does and catches events that do not match the catalogue", async () => {
    // Written in pieces, one split inside a line and one with CRLF line ends.
    const chunks = [
      "retry: 1234\n: hello\n\n",
      `id: 1\nevent: resync\ndata: {"reason":"gone","fr`,
      `om":0}\n\n`,
      `data: {"plain":true}\n\n`,
      `id: 2\r\nevent: receipt\r\ndata: {"id":"not-a-uuid","from":"juliet@localhost","status":"delivered"}\r\n\r\n`,
      ": heartbeat\n\n",
    ];
    const server = createServer(async (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const c of chunks) {
        res.write(c);
        await new Promise((r) => setTimeout(r, 5));
      }
      res.end();
    });
    const free = await freePort();
    await new Promise<void>((r) => server.listen(free, "127.0.0.1", r));
    try {
      const s = await SseClient.open(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`, {});
      await s.waitFor(() => s.comments.includes("heartbeat"), 5000, "the last comment").catch(() => undefined);
      await s.close();
      assert.equal(s.retry, 1234);
      assert.deepEqual(s.comments, ["hello", "heartbeat"]);
      assert.deepEqual(
        s.events.map((e) => [e.id, e.event, e.json]),
        [
          ["1", "resync", { reason: "gone", from: 0 }],
          [null, "message", { plain: true }],
          ["2", "receipt", { id: "not-a-uuid", from: "juliet@localhost", status: "delivered" }],
        ],
      );
      // The resync is fine; the id-less "message" and the receipt with a bad id are not.
      assert.equal(s.schemaErrors.length, 2, s.schemaErrors.join("\n"));
      assert.match(s.schemaErrors[0]!, /id null/);
      assert.match(s.schemaErrors[1]!, /^receipt: data\/id: /);
      assert.equal(schemaMismatches.length, 2);
      // What TestGateway.stop() does: fail, listing them, and start over.
      assert.throws(() => assertNoSchemaMismatches(), /2 event\(s\) did not match the event catalogue[\s\S]*receipt: data\/id/);
      assert.equal(schemaMismatches.length, 0);
      assert.doesNotThrow(() => assertNoSchemaMismatches());
    } finally {
      schemaMismatches.length = 0;
      server.close();
    }
  });
});
