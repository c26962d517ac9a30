// The webhook routes over HTTP (API.md "Webhooks (1.1)"), against a real gateway, a real Prosody
// and a real receiver process on 127.0.0.1 (the only allowlisted address): the create / read /
// change / delete round trip and what each view shows (the secret only at creation), request
// validation, refusal of loopback, private, link-local and metadata targets when a URL is set (and
// acceptance of a host that does not resolve, whose deliveries then fail and are retried), who may
// see and manage which endpoint, secret rotation, the deliveries view with its paging and status
// filter, and replay. Only 127.0.0.1 ever gets traffic: the refused targets are refused before any
// connection is made.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from "../../scripts/harness/webhook-receiver.js";
import { startTestGateway, uniq, waitFor, type HttpResult, type TestGateway } from "../helpers/gateway.js";

const SECRET = /^whsec_[A-Za-z0-9+/]{43}=$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DAY_MS = 24 * 3600_000;

interface View {
  id: string;
  account: string;
  url: string;
  events: string[] | null;
  description: string | null;
  status: "enabled" | "disabled";
  disabledAt: string | null;
  disabledReason: string | null;
  failingSince: string | null;
  createdAt: string;
  updatedAt: string;
}

interface Delivery {
  webhookId: string;
  account: string;
  eventId: number;
  type: string;
  status: string;
  attempts: number;
  responseStatus: number | null;
  history: { at: string; responseStatus: number | null; error: string | null; durationMs: number }[];
}

/** Asserts an RFC 9457 problem with this status and code (and, when given, the offending field). */
function assertProblem(r: HttpResult, status: number, code: string, field?: string): void {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get("content-type") ?? "", /^application\/problem\+json/);
  assert.equal(r.body?.code, code, r.text);
  if (field !== undefined) assert.equal(r.body?.field, field, r.text);
}

describe("webhook routes over HTTP (prosody)", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let receiver: WebhookReceiver;

  before(async () => {
    server = await startXmppServer("prosody");
    receiver = await startWebhookReceiver();
    // One retry 200 ms after a failure, so a delivery can end `failed` within the test.
    gw = await startTestGateway(server, { WEBHOOK_ALLOW_PRIVATE: "127.0.0.1", WEBHOOK_RETRY_SCHEDULE: "200ms", WEBHOOK_TIMEOUT: "3s" });
  });
  after(async () => {
    await gw?.stop();
    await receiver?.stop();
    await server?.stop();
  });

  /** A fresh account and its token, so tests do not see each other's endpoints. */
  async function account(prefix: string): Promise<{ lp: string; jid: string; token: string }> {
    const lp = uniq(prefix);
    const jid = await gw.createAccount(lp);
    return { lp, jid, token: gw.token(lp) };
  }

  async function create(token: string, body: Record<string, unknown>): Promise<View & { secret: string }> {
    const r = await gw.request("POST", "/v1/webhooks", { token, body });
    assert.equal(r.status, 201, r.text);
    // RFC 9110 §15.3.2: the 201 names what it created.
    assert.equal(r.headers.get("location"), `/v1/webhooks/${r.body.id}`);
    return r.body;
  }

  async function list(token: string, query = ""): Promise<View[]> {
    const r = await gw.request("GET", `/v1/webhooks${query}`, { token });
    assert.equal(r.status, 200, r.text);
    return r.body.items;
  }

  async function get(token: string, id: string): Promise<View> {
    const r = await gw.request("GET", `/v1/webhooks/${id}`, { token });
    assert.equal(r.status, 200, r.text);
    return r.body;
  }

  /** A roster event in the account's log (PUT /v1/roster/{jid} with a new name). */
  async function rosterEvent(token: string, contact: string): Promise<void> {
    const r = await gw.request("PUT", `/v1/roster/${encodeURIComponent(contact)}`, { token, body: { name: uniq("n") } });
    assert.ok(r.status === 201 || r.status === 200, r.text);
  }

  const signatureCount = (r: ReceivedWebhook) => (r.headers["webhook-signature"] ?? "").split(" ").filter((s) => s.startsWith("v1,")).length;

  it("creates, reads, lists, changes and deletes an account's own webhook; the secret is shown only at creation", async () => {
    const a = await account("crud");
    const created = await create(a.token, { url: receiver.url("crud-1"), events: ["message", "roster", "roster"], description: "first" });
    const { secret, ...view } = created;
    assert.match(secret, SECRET);
    assert.match(view.id, UUID);
    assert.equal(view.account, a.jid);
    assert.equal(view.url, receiver.url("crud-1"));
    assert.deepEqual(view.events, ["message", "roster"], "the events filter is stored once per type");
    assert.equal(view.description, "first");
    assert.deepEqual([view.status, view.disabledAt, view.disabledReason, view.failingSince], ["enabled", null, null, null]);
    assert.ok(!Number.isNaN(Date.parse(view.createdAt)) && view.updatedAt >= view.createdAt, JSON.stringify(view));

    // The GET views are the created one without the secret, which appears nowhere in them.
    const one = await gw.request("GET", `/v1/webhooks/${view.id}`, { token: a.token });
    assert.equal(one.status, 200, one.text);
    assert.deepEqual(one.body, view);
    assert.ok(!("secret" in one.body) && !one.text.includes(secret.slice(6)), "GET /v1/webhooks/{id} shows the secret");
    const all = await gw.request("GET", "/v1/webhooks", { token: a.token });
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(all.body, { items: [view], nextCursor: null });
    assert.ok(!all.text.includes(secret.slice(6)), "GET /v1/webhooks shows the secret");

    const patch = async (body: Record<string, unknown>): Promise<View> => {
      const r = await gw.request("PATCH", `/v1/webhooks/${view.id}`, { token: a.token, body });
      assert.equal(r.status, 200, r.text);
      assert.ok(!r.text.includes(secret.slice(6)), "PATCH shows the secret");
      assert.deepEqual(r.body, await get(a.token, view.id), "PATCH answers what GET then shows");
      return r.body;
    };
    let v = await patch({ url: receiver.url("crud-2") });
    assert.deepEqual([v.url, v.events, v.description], [receiver.url("crud-2"), ["message", "roster"], "first"], "only the URL changed");
    assert.ok(v.updatedAt >= view.updatedAt);
    v = await patch({ events: ["presence"], description: "second" });
    assert.deepEqual([v.url, v.events, v.description], [receiver.url("crud-2"), ["presence"], "second"]);
    v = await patch({ events: null, description: null });
    assert.deepEqual([v.events, v.description], [null, null], "null: every event type, no description");
    v = await patch({ status: "disabled" });
    assert.equal(v.status, "disabled");
    assert.ok(v.disabledAt !== null && typeof v.disabledReason === "string", JSON.stringify(v));
    v = await patch({ status: "enabled" });
    assert.deepEqual([v.status, v.disabledAt, v.disabledReason, v.failingSince], ["enabled", null, null, null]);
    assert.equal(v.url, receiver.url("crud-2"), "a status change leaves the rest alone");

    const del = await gw.request("DELETE", `/v1/webhooks/${view.id}`, { token: a.token });
    assert.equal(del.status, 204, del.text);
    assertProblem(await gw.request("GET", `/v1/webhooks/${view.id}`, { token: a.token }), 404, "webhook-not-found");
    assertProblem(await gw.request("DELETE", `/v1/webhooks/${view.id}`, { token: a.token }), 404, "webhook-not-found");
    assert.deepEqual(await list(a.token), []);
  });

  it("re-enabling an endpoint ends its failure streak (failingSince back to null)", async () => {
    const a = await account("streak");
    const hook = await create(a.token, { url: receiver.url("streak"), events: ["roster"] });
    // Both attempts (the first and the one retry) get a 500: the delivery fails for good.
    await receiver.plan("streak", ["500", "500"]);
    await rosterEvent(a.token, "streak@localhost");
    await receiver.waitFor("streak", 2);
    await waitFor(async () => (await get(a.token, hook.id)).failingSince !== null, 10_000, "failingSince set after the failures");
    let v = (await gw.request("PATCH", `/v1/webhooks/${hook.id}`, { token: a.token, body: { status: "disabled" } })).body as View;
    assert.equal(v.status, "disabled");
    v = (await gw.request("PATCH", `/v1/webhooks/${hook.id}`, { token: a.token, body: { status: "enabled" } })).body as View;
    assert.deepEqual([v.status, v.failingSince, v.disabledAt], ["enabled", null, null]);
    assert.equal((await get(a.token, hook.id)).failingSince, null);
  });

  it("refuses invalid requests with 400 validation-failed naming the field, and creates nothing", async () => {
    const a = await account("valid");
    const url = receiver.url("valid");
    const cases: [string, Record<string, unknown>, string][] = [
      ["ftp URL", { url: "ftp://127.0.0.1/hook" }, "body.url"],
      ["relative URL", { url: "/hooks/valid" }, "body.url"],
      ["URL longer than 2048", { url: `http://127.0.0.1/${"a".repeat(2048 - "http://127.0.0.1/".length + 1)}` }, "body.url"],
      ["credentials in the URL", { url: "http://user:pass@127.0.0.1/hook" }, "body.url"],
      ["a fragment", { url: "http://127.0.0.1/hook#part" }, "body.url"],
      ["empty URL", { url: "" }, "body.url"],
      ["no URL", { events: ["message"] }, "body.url"],
      ["unknown event type", { url, events: ["message", "telepathy"] }, "body.events.1"],
      ["empty events", { url, events: [] }, "body.events"],
      ["events null on creation", { url, events: null }, "body.events"],
      ["unknown field", { url, colour: "red" }, "body.colour"],
      ["description not a string", { url, description: 5 }, "body.description"],
      // RFC 3986 §2: a NUL was a 500 (PostgreSQL cannot store it); the others were stored as given.
      ["a NUL in the URL", { url: `${url}\u0000` }, "body.url"],
      ["a control character in the URL", { url: `${url}\u0001` }, "body.url"],
      ["white space in the URL", { url: `${url} x` }, "body.url"],
      ["a lone surrogate in the URL", { url: `${url}\ud800` }, "body.url"],
    ];
    const failures: string[] = [];
    for (const [what, body, field] of cases) {
      const r = await gw.request("POST", "/v1/webhooks", { token: a.token, body });
      if (r.status !== 400 || r.body?.code !== "validation-failed" || r.body?.field !== field) failures.push(`${what}: ${r.status} ${r.text.slice(0, 200)}`);
    }
    assert.deepEqual(failures, []);
    assert.deepEqual(await list(a.token), [], "a refused request created a webhook");

    // The boundary: exactly 2048 characters is a valid URL.
    const longest = `http://127.0.0.1/${"a".repeat(2048 - "http://127.0.0.1/".length)}`;
    assert.equal(longest.length, 2048);
    const hook = await create(a.token, { url: longest });
    assert.equal(hook.url, longest);

    const patchCases: [string, unknown, string][] = [
      ["empty body", {}, "body"],
      ["ftp URL", { url: "ftp://127.0.0.1/hook" }, "body.url"],
      ["fragment", { url: "http://127.0.0.1/hook#x" }, "body.url"],
      ["a NUL in the URL", { url: "http://127.0.0.1/hook\u0000" }, "body.url"],
      ["white space in the URL", { url: "http://127.0.0.1/ho ok" }, "body.url"],
      ["empty events", { events: [] }, "body.events"],
      ["unknown status", { status: "paused" }, "body.status"],
      ["unknown field", { secret: "whsec_x" }, "body.secret"],
    ];
    const patchFailures: string[] = [];
    for (const [what, body, field] of patchCases) {
      const r = await gw.request("PATCH", `/v1/webhooks/${hook.id}`, { token: a.token, body });
      if (r.status !== 400 || r.body?.code !== "validation-failed" || r.body?.field !== field) patchFailures.push(`PATCH ${what}: ${r.status} ${r.text.slice(0, 200)}`);
    }
    assert.deepEqual(patchFailures, []);
    const after = await get(a.token, hook.id);
    assert.deepEqual(after, (({ secret: _s, ...v }) => v)(hook), "a refused PATCH changed the webhook");
  });

  it('accepts "resync" among the events (API.md lists it; it never fires for a webhook)', async () => {
    const a = await account("resync");
    const only = await create(a.token, { url: receiver.url("resync"), events: ["resync"] });
    assert.deepEqual(only.events, ["resync"]);
    const mixed = await create(a.token, { url: receiver.url("resync-mixed"), events: ["roster", "resync"] });
    assert.deepEqual(mixed.events, ["roster", "resync"]);
    const r = await gw.request("PATCH", `/v1/webhooks/${mixed.id}`, { token: a.token, body: { events: ["resync", "message"] } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.events, ["resync", "message"]);
    assert.equal((await gw.request("PATCH", `/v1/webhooks/${mixed.id}`, { token: a.token, body: { events: ["roster", "resync"] } })).status, 200);
    // A roster event reaches the endpoint that has roster too (the sentinel), not the resync-only one.
    await rosterEvent(a.token, "resync@localhost");
    await receiver.waitFor("resync-mixed", 1);
    await waitFor(async () => (await gw.request("GET", `/v1/webhooks/${mixed.id}/deliveries?status=delivered`, { token: a.token })).body?.items?.length === 1, 10_000, "the sentinel delivery recorded");
    assert.equal(await receiver.count("resync"), 0, "an event was delivered to the resync-only endpoint");
  });

  it("accepts a host that does not resolve (yet): the endpoint is managed as any other, and its deliveries fail and are retried", async () => {
    const a = await account("nxdomain");
    // RFC 6761 §6.4: names under .invalid never resolve (a stand-in for a placeholder host that
    // this machine's DNS cannot resolve).
    const hook = await create(a.token, { url: "https://hooks.example.invalid/x", events: ["roster"] });
    assert.match(hook.secret, SECRET);
    assert.equal(hook.url, "https://hooks.example.invalid/x");
    assert.equal((await get(a.token, hook.id)).url, "https://hooks.example.invalid/x");
    const patched = await gw.request("PATCH", `/v1/webhooks/${hook.id}`, { token: a.token, body: { url: "https://other.example.invalid/y", description: "placeholder" } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.body.url, "https://other.example.invalid/y");
    assert.equal((await gw.request("POST", `/v1/webhooks/${hook.id}/rotate-secret`, { token: a.token })).status, 200);

    // Each attempt resolves the host again: it does not, so the attempt fails and is retried (the
    // schedule here is one retry), then the delivery is failed with the lookup error recorded.
    await rosterEvent(a.token, "nxdomain@localhost");
    const failed = async () => (await gw.request("GET", `/v1/webhooks/${hook.id}/deliveries?status=failed`, { token: a.token })).body?.items ?? [];
    await waitFor(async () => (await failed()).length === 1, 15_000, "the delivery failed after its retry");
    const [d] = (await failed()) as (Delivery & { error: string | null })[];
    assert.deepEqual([d!.attempts, d!.responseStatus], [2, null]);
    assert.match(d!.error ?? "", /ENOTFOUND|EAI_AGAIN|ESERVFAIL/);
  });

  it("refuses loopback, private, link-local, metadata (addresses and names) and unspecified targets (400 webhook-target-forbidden) and allows the allowlisted 127.0.0.1", async () => {
    const a = await account("ssrf");
    const hosts = [
      "127.0.0.2",
      "[::1]",
      "[::ffff:127.0.0.2]",
      "10.0.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "[fd00:ec2::254]",
      "100.100.100.200",
      "0.0.0.0",
      // Other spellings of 127.0.0.2, which the URL parser normalises: the check sees the address.
      "2130706434",
      "0x7f.0.0.2",
    ];
    const failures: string[] = [];
    for (const host of hosts) {
      for (const scheme of ["http", "https"]) {
        const r = await gw.request("POST", "/v1/webhooks", { token: a.token, body: { url: `${scheme}://${host}:8080/hook` } });
        if (r.status !== 400 || r.body?.code !== "webhook-target-forbidden" || r.body?.field !== "body.url") failures.push(`${scheme}://${host}: ${r.status} ${r.text.slice(0, 200)}`);
      }
    }
    assert.deepEqual(failures, []);
    assert.deepEqual(await list(a.token), [], "a refused target was stored");

    // Cloud metadata names are refused by name: they resolve only inside the cloud (not here).
    // And names for loopback a lookup here does not know (RFC 6761 §6.3): refused as loopback all the same.
    const names = ["metadata.google.internal", "METADATA.GOOGLE.INTERNAL.", "metadata", "instance-data", "metadat%61.google.internal", "hooks.localhost", "localhost.", "ip6-loopback"];
    const nameFailures: string[] = [];
    for (const host of names) {
      const r = await gw.request("POST", "/v1/webhooks", { token: a.token, body: { url: `http://${host}/computeMetadata/v1/` } });
      if (r.status !== 400 || r.body?.code !== "webhook-target-forbidden" || r.body?.field !== "body.url") nameFailures.push(`${host}: ${r.status} ${r.text.slice(0, 200)}`);
    }
    assert.deepEqual(nameFailures, []);
    assert.deepEqual(await list(a.token), [], "a refused target was stored");

    const ok = await create(a.token, { url: receiver.url("ssrf") });
    assert.equal(ok.url, receiver.url("ssrf"));
    const before = await get(a.token, ok.id);
    for (const host of ["127.0.0.2", "[::1]", "169.254.169.254", "[fd00:ec2::254]"]) {
      assertProblem(await gw.request("PATCH", `/v1/webhooks/${ok.id}`, { token: a.token, body: { url: `http://${host}/hook`, description: "changed" } }), 400, "webhook-target-forbidden", "body.url");
    }
    assertProblem(await gw.request("PATCH", `/v1/webhooks/${ok.id}`, { token: a.token, body: { url: "http://metadata.google.internal/x" } }), 400, "webhook-target-forbidden", "body.url");
    assert.deepEqual(await get(a.token, ok.id), before, "a refused PATCH changed the webhook (url, description or updatedAt)");
  });

  it("hides another account's webhook (404 webhook-not-found on every route) and leaves it unchanged", async () => {
    const owner = await account("owner");
    const other = await account("other");
    const hook = await create(owner.token, { url: receiver.url("owned"), events: ["roster"], description: "owner's" });
    const mine = await create(other.token, { url: receiver.url("others") });
    const before = await get(owner.token, hook.id);

    for (const [method, path, body] of [
      ["GET", `/v1/webhooks/${hook.id}`, undefined],
      ["PATCH", `/v1/webhooks/${hook.id}`, { url: receiver.url("stolen"), status: "disabled" }],
      ["DELETE", `/v1/webhooks/${hook.id}`, undefined],
      ["POST", `/v1/webhooks/${hook.id}/rotate-secret`, undefined],
      ["GET", `/v1/webhooks/${hook.id}/deliveries`, undefined],
      ["POST", `/v1/webhooks/${hook.id}/replay`, { since: 0 }],
    ] as const) {
      const r = await gw.request(method, path, { token: other.token, body });
      assertProblem(r, 404, "webhook-not-found");
      assert.ok(!r.text.includes(receiver.url("owned")) && !r.text.includes(owner.jid), `${method} ${path} leaks the owner's data: ${r.text}`);
    }
    // A uuid nobody has is the same answer, so ids cannot be probed.
    assertProblem(await gw.request("GET", "/v1/webhooks/00000000-0000-4000-8000-000000000000", { token: other.token }), 404, "webhook-not-found");
    // And so is an id that is not a UUID: it names no endpoint (404), it is not a malformed request (400).
    for (const [method, path, body] of [
      ["GET", "/v1/webhooks/nope", undefined],
      ["PATCH", "/v1/webhooks/nope", { status: "disabled" }],
      ["DELETE", "/v1/webhooks/nope", undefined],
      ["POST", "/v1/webhooks/nope/rotate-secret", undefined],
      ["GET", "/v1/webhooks/nope/deliveries", undefined],
      ["POST", "/v1/webhooks/nope/replay", { since: 0 }],
    ] as const) {
      assertProblem(await gw.request(method, path, { token: other.token, body }), 404, "webhook-not-found");
    }

    assert.deepEqual(await get(owner.token, hook.id), before, "another account changed the webhook");
    assert.deepEqual((await list(other.token)).map((v) => v.id), [mine.id], "another account's list shows only its own");
    // The secret was not rotated: the next delivery carries one signature, by the original secret.
    await rosterEvent(owner.token, "owned@localhost");
    const [got] = await receiver.waitFor("owned", 1);
    assert.equal(signatureCount(got!), 1, got!.headers["webhook-signature"]);
    const payload = new Webhook(hook.secret).verify(got!.body, got!.headers) as { account: string; type: string };
    assert.deepEqual([payload.account, payload.type], [owner.jid, "roster"]);
    assert.equal(await receiver.count("stolen"), 0);
  });

  it("lets only an admin name another account: for another account, for every account (*), and in the list filter", async () => {
    const a = await account("adma");
    const b = await account("admb");
    const url = receiver.url("admin");
    assertProblem(await gw.request("POST", "/v1/webhooks", { token: a.token, body: { url, account: b.lp } }), 403, "forbidden", "body.account");
    assertProblem(await gw.request("POST", "/v1/webhooks", { token: a.token, body: { url, account: b.jid } }), 403, "forbidden", "body.account");
    assertProblem(await gw.request("POST", "/v1/webhooks", { token: a.token, body: { url, account: "*" } }), 403, "forbidden", "body.account");
    assertProblem(await gw.request("POST", "/v1/webhooks", { token: a.token, body: { url, account: uniq("ghost") } }), 403, "forbidden", "body.account");
    assertProblem(await gw.request("GET", `/v1/webhooks?account=${a.lp}`, { token: a.token }), 403, "forbidden");
    assert.deepEqual(await list(a.token), [], "a refused request created a webhook");
    assert.deepEqual(await list(b.token), [], "a refused request created a webhook");
    // Naming its own account (localpart or bare JID) is what the default does anyway: allowed.
    const ownByLp = await create(a.token, { url, account: a.lp });
    const ownByJid = await create(a.token, { url, account: a.jid });
    assert.deepEqual([ownByLp.account, ownByJid.account], [a.jid, a.jid]);
    assert.deepEqual((await list(a.token)).map((v) => v.id).sort(), [ownByLp.id, ownByJid.id].sort());
    for (const id of [ownByLp.id, ownByJid.id]) assert.equal((await gw.request("DELETE", `/v1/webhooks/${id}`, { token: a.token })).status, 204);

    const forB = await create(gw.adminToken, { url, account: b.lp });
    assert.equal(forB.account, b.jid);
    const forBJid = await create(gw.adminToken, { url, account: b.jid });
    assert.equal(forBJid.account, b.jid);
    const forAll = await create(gw.adminToken, { url, account: "*", events: ["presence"] });
    assert.equal(forAll.account, "*");
    const ownA = await create(a.token, { url });
    assertProblem(await gw.request("POST", "/v1/webhooks", { token: gw.adminToken, body: { url, account: uniq("ghost") } }), 404, "account-not-found", "body.account");
    // The admin token's subject is no account: without `account` there is nobody to subscribe for.
    assertProblem(await gw.request("POST", "/v1/webhooks", { token: gw.adminToken, body: { url } }), 404, "account-not-found");

    // The account sees and manages what the admin made for it; not the every-account one.
    assert.deepEqual((await list(b.token)).map((v) => v.id).sort(), [forB.id, forBJid.id].sort());
    assert.equal((await get(b.token, forB.id)).account, b.jid);
    assertProblem(await gw.request("GET", `/v1/webhooks/${forAll.id}`, { token: b.token }), 404, "webhook-not-found");
    assert.deepEqual((await list(a.token)).map((v) => v.id), [ownA.id]);

    // The admin lists everything (paging through), and one account's with ?account=.
    const everything: View[] = [];
    for (let cursor: string | null = null, pages = 0; ; pages++) {
      const r = await gw.request("GET", `/v1/webhooks?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.body.items.length <= 2 && pages < 100);
      everything.push(...r.body.items);
      cursor = r.body.nextCursor;
      if (!cursor) break;
    }
    const ids = everything.map((v) => v.id);
    assert.equal(new Set(ids).size, ids.length, "pages overlap");
    for (const id of [forB.id, forBJid.id, forAll.id, ownA.id]) assert.ok(ids.includes(id), `the admin's list misses ${id}`);
    assert.equal(everything.find((v) => v.id === forAll.id)?.account, "*");
    for (const filter of [b.lp, b.jid]) {
      const onlyB = await list(gw.adminToken, `?account=${encodeURIComponent(filter)}`);
      assert.deepEqual(onlyB.map((v) => v.id).sort(), [forB.id, forBJid.id].sort());
      assert.ok(onlyB.every((v) => v.account === b.jid));
    }
    assertProblem(await gw.request("GET", `/v1/webhooks?account=${uniq("ghost")}`), 404, "account-not-found");
    // The admin manages any endpoint.
    assert.equal((await get(gw.adminToken, ownA.id)).account, a.jid);
    for (const id of [forB.id, forBJid.id, forAll.id]) assert.equal((await gw.request("DELETE", `/v1/webhooks/${id}`)).status, 204);
    assert.deepEqual(await list(b.token), []);
  });

  it("allows 20 webhooks per account: the 21st is 409 too-many-webhooks, for the admin too", async () => {
    const a = await account("many");
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await create(a.token, { url: receiver.url(`many-${i}`) })).id);
    assertProblem(await gw.request("POST", "/v1/webhooks", { token: a.token, body: { url: receiver.url("many-21") } }), 409, "too-many-webhooks");
    assertProblem(await gw.request("POST", "/v1/webhooks", { token: gw.adminToken, body: { url: receiver.url("many-21"), account: a.lp } }), 409, "too-many-webhooks");
    assert.equal((await list(a.token)).length, 20);
    // The limit counts what exists: after a deletion there is room for one more.
    assert.equal((await gw.request("DELETE", `/v1/webhooks/${ids[0]}`, { token: a.token })).status, 204);
    await create(a.token, { url: receiver.url("many-21") });
    assertProblem(await gw.request("POST", "/v1/webhooks", { token: a.token, body: { url: receiver.url("many-22") } }), 409, "too-many-webhooks");
  });

  it("rotates the secret: a new one, the old one signing too for about 24 h", async () => {
    const a = await account("rotate");
    const hook = await create(a.token, { url: receiver.url("rotate"), events: ["roster"] });
    const before = await get(a.token, hook.id);
    const t0 = Date.now();
    const r = await gw.request("POST", `/v1/webhooks/${hook.id}/rotate-secret`, { token: a.token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body).sort(), ["previousSecretExpiresAt", "secret"]);
    assert.match(r.body.secret, SECRET);
    assert.notEqual(r.body.secret, hook.secret);
    const expires = Date.parse(r.body.previousSecretExpiresAt);
    assert.ok(Math.abs(expires - (t0 + DAY_MS)) < 60_000, `previousSecretExpiresAt ${r.body.previousSecretExpiresAt} is not about 24 h after ${new Date(t0).toISOString()}`);
    const after = await get(a.token, hook.id);
    assert.ok(!JSON.stringify(after).includes(r.body.secret.slice(6)), "GET shows the new secret");
    assert.deepEqual({ ...after, updatedAt: "" }, { ...before, updatedAt: "" }, "rotation changed more than the secret");

    // Both secrets sign the next delivery.
    await rosterEvent(a.token, "rotate@localhost");
    const [got] = await receiver.waitFor("rotate", 1);
    assert.equal(signatureCount(got!), 2, got!.headers["webhook-signature"]);
    for (const secret of [r.body.secret as string, hook.secret]) new Webhook(secret).verify(got!.body, got!.headers);
  });

  it("pages through deliveries without overlap and filters them by status", async () => {
    const a = await account("pages");
    const hook = await create(a.token, { url: receiver.url("pages"), events: ["roster"] });
    // The first event fails both of its attempts (failed for good); the next four are delivered.
    await receiver.plan("pages", ["500", "500"]);
    for (let i = 0; i < 5; i++) await rosterEvent(a.token, `pages${i}@localhost`);
    await receiver.waitFor("pages", 6);
    const all = async (status = ""): Promise<Delivery[]> => {
      const r = await gw.request("GET", `/v1/webhooks/${hook.id}/deliveries${status ? `?status=${status}` : ""}`, { token: a.token });
      assert.equal(r.status, 200, r.text);
      return r.body.items;
    };
    await waitFor(async () => (await all("delivered")).length === 4, 10_000, "four deliveries recorded as delivered");

    const pages: Delivery[][] = [];
    let cursor: string | null = null;
    do {
      const r = await gw.request("GET", `/v1/webhooks/${hook.id}/deliveries?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: a.token });
      assert.equal(r.status, 200, r.text);
      pages.push(r.body.items);
      cursor = r.body.nextCursor;
      if (pages.length === 1) assert.equal(typeof cursor, "string", "a full first page has a nextCursor");
    } while (cursor && pages.length < 10);
    assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
    const paged = pages.flat();
    const seqs = paged.map((d) => d.eventId);
    assert.equal(new Set(seqs).size, 5, `pages overlap: ${seqs.join(", ")}`);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => y - x), "newest first");
    assert.deepEqual(paged, await all(), "the pages together are the unpaged list");
    assert.ok(paged.every((d) => d.account === a.jid && d.type === "roster"));

    const delivered = await all("delivered");
    const failed = await all("failed");
    assert.equal(delivered.length, 4);
    assert.ok(delivered.every((d) => d.status === "delivered" && d.attempts === 1 && d.responseStatus === 200));
    assert.deepEqual(
      failed.map((d) => [d.eventId, d.status, d.attempts, d.responseStatus]),
      [[Math.min(...seqs), "failed", 2, 500]],
    );
    // Each delivery lists its attempts: both of the failed one, the one of each delivered one.
    assert.deepEqual(failed[0]!.history.map((h) => [h.responseStatus, h.error]), [[500, null], [500, null]]);
    assert.ok(delivered.every((d) => d.history.length === 1 && d.history[0]!.responseStatus === 200 && d.history[0]!.at === (d as Delivery & { lastAttemptAt: string }).lastAttemptAt));
    assert.ok(!failed.some((f) => delivered.some((d) => d.eventId === f.eventId)), "?status=failed returns a delivered one");
    assert.deepEqual(await all("pending"), []);
    assertProblem(await gw.request("GET", `/v1/webhooks/${hook.id}/deliveries?status=lost`, { token: a.token }), 400, "validation-failed", "querystring.status");
    assertProblem(await gw.request("GET", `/v1/webhooks/${hook.id}/deliveries?cursor=abc`, { token: a.token }), 400, "validation-failed", "querystring.cursor");
  });

  it("replays from a sequence number, and refuses a negative one and another account than the caller's, existing or not (403, as on create)", async () => {
    const a = await account("replay");
    const other = await account("replayother");
    const hook = await create(a.token, { url: receiver.url("replay"), events: ["roster"] });
    assertProblem(await gw.request("POST", `/v1/webhooks/${hook.id}/replay`, { token: a.token, body: { since: -1 } }), 400, "validation-failed", "body.since");
    assertProblem(await gw.request("POST", `/v1/webhooks/${hook.id}/replay`, { token: a.token, body: { since: 1.5 } }), 400, "validation-failed", "body.since");
    assertProblem(await gw.request("POST", `/v1/webhooks/${hook.id}/replay`, { token: a.token, body: {} }), 400, "validation-failed", "body.since");
    assertProblem(await gw.request("POST", `/v1/webhooks/${hook.id}/replay`, { token: a.token, body: { since: 0, account: uniq("ghost") } }), 403, "forbidden", "body.account");
    assertProblem(await gw.request("POST", `/v1/webhooks/${hook.id}/replay`, { token: a.token, body: { since: 0, account: other.lp } }), 403, "forbidden", "body.account");
    assertProblem(await gw.request("POST", `/v1/webhooks/${hook.id}/replay`, { token: a.token, body: { since: 0, account: "*" } }), 403, "forbidden", "body.account");
    assert.equal(await receiver.count("replay"), 0, "a refused replay delivered something");

    await rosterEvent(a.token, "replay@localhost");
    const [first] = await receiver.waitFor("replay", 1);
    // The lane's progress is settled after the answer: replay once it is, or it would move nothing.
    await waitFor(async () => (await gw.request("GET", `/v1/webhooks/${hook.id}/deliveries?status=delivered`, { token: a.token })).body?.items?.length === 1, 10_000, "the delivery recorded");
    // Naming its own account is what the default does.
    const r = await gw.request("POST", `/v1/webhooks/${hook.id}/replay`, { token: a.token, body: { since: 0, account: a.lp } });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(r.body, { lanes: 1 });
    const got = await receiver.waitFor("replay", 2);
    assert.equal(got[1]!.headers["webhook-id"], first!.headers["webhook-id"], "the replayed event keeps its webhook-id");
    assert.equal(got[1]!.body, first!.body);
  });
});
