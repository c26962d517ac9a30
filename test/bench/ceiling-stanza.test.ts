// The message benchmark's ceiling (bench/lib/senders.ts) is a raw component writing "the same
// stanzas" as Balcony: its stanza must be the one the gateway sends for the bench's own request,
// `POST /v1/messages {to, body}`, or the ratios compare unequal work. (It lacked XEP-0333's
// markable, which the gateway adds to chat messages by default, from when that was added until
// this test.) Sent through the real use case against PostgreSQL, with a fake outbound port.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Messaging } from "../../src/services/messaging.js";
import { renderText } from "../../src/xmpp/render.js";
import { ceilingStanza } from "../../bench/lib/senders.js";
import { bodyText } from "../../bench/lib/util.js";
import { setup, teardown, type Env } from "../services/setup.js";

describe("the message benchmark's ceiling stanza", () => {
  let env: Env;
  let messaging: Messaging;

  before(async () => {
    env = await setup();
    messaging = env.messaging();
  });
  after(() => teardown(env));

  it("is byte for byte what the gateway writes for the bench's POST /v1/messages", async () => {
    const a = await env.account("bench");
    const body = `${bodyText("ceiling", 1)} <&>`;
    await messaging.send(a, null, { to: "sink@localhost", body }, null);
    await env.flush();
    const [sent] = env.out.sent;
    assert.ok(sent?.kind === "message", "the gateway wrote a message stanza");
    assert.equal(ceilingStanza(sent.from, sent.to, body, sent.id), renderText(sent));
  });
});
