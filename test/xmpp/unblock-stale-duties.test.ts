// An iq from a JID, or a XEP-0184 receipt owed to it, after another instance unblocked it
// (XEP-0191 §3.4) and before the instance answering read the NOTIFY that drops its cached
// blocklist: that instance's cached list still blocks the JID, and the committed one, which it reads
// before refusing the iq or settling the receipt unsent (src/services/blocking.ts confirmBlocks),
// does not. Two gateways on one database, the link holder (A) deaf to NOTIFYs while B unblocks
// (test/helpers/deaf-pair.ts), and real users on a real XMPP server: Juliet, unblocked on B, is
// answered; the Nurse, still blocked, is not. Inbound messages and presence in the same race:
// unblock-stale-inbound.test.ts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { xml, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { deafLinkWorld } from "../helpers/deaf-pair.js";
import { uniq, waitFor } from "../helpers/gateway.js";
import { gatewaySentinel, receivedFrom } from "../helpers/sentinel.js";
import { KINDS } from "../helpers/servers.js";
import { grantPresence } from "../helpers/xmpp-world.js";

const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const RECEIPTS = "urn:xmpp:receipts";
const DISCO_INFO = "http://jabber.org/protocol/disco#info";
const WAIT = 10_000;
const path = (jid: string) => `/v1/blocklist/${encodeURIComponent(jid)}`;
const bareOf = (user: XmppUser) => user.jid.split("/")[0]!;
/** The defined condition of an error stanza (RFC 6120 §8.3.3). */
const condition = (s: XmlElement) => s.getChild("error")?.children.find((c): c is XmlElement => typeof c !== "string" && c.attrs.xmlns === STANZAS)?.name;

for (const kind of KINDS) {
  describe(`iq answers and receipts for a JID unblocked on B, at the link holder A that has not heard yet (${kind})`, () => {
    const w = deafLinkWorld(kind, { juliet: "balcony", nurse: "garden" });

    /**
     * An account on A whose presence Juliet and the Nurse may see (so its bare JID answers their
     * disco#info, XEP-0030 §8, and its receipts go to them, XEP-0184 §8), and which blocks both (PUT on A).
     */
    async function blockingBoth(lp: string): Promise<string> {
      const jid = await w.p.a.createAccount(lp);
      for (const user of [w.juliet, w.nurse]) await grantPresence(w.p.a, lp, user);
      for (const user of [w.juliet, w.nurse]) assert.equal((await w.p.a.request("PUT", path(bareOf(user)), { token: w.p.a.token(lp) })).status, 204, `${bareOf(user)} blocked on A`);
      return jid;
    }
    const unblockOnB = async (lp: string, user: XmppUser) => assert.equal((await w.p.b.request("DELETE", path(bareOf(user)), { token: w.p.b.token(lp) })).status, 204, `${bareOf(user)} unblocked on B`);
    /** `user`'s disco#info query to `to`, and its answer. */
    async function disco(user: XmppUser, to: string): Promise<XmlElement> {
      const id = uniq("disco-");
      await user.send(xml("iq", { to, type: "get", id }, xml("query", { xmlns: DISCO_INFO })));
      return user.waitFor((s) => s.is("iq") && s.attrs.id === id && (s.attrs.type === "result" || s.attrs.type === "error"), WAIT);
    }
    const assertRefused = (answer: XmlElement, what: string) => {
      assert.equal(answer.attrs.type, "error", `${what}: ${answer.toString()}`);
      assert.equal(condition(answer), "service-unavailable", `${what}: ${answer.toString()}`);
    };

    it("an iq from Juliet after her unblock is answered; the Nurse's, still blocked, is service-unavailable (XEP-0191 §3.3)", async () => {
      const lp = uniq("iq-unblocked");
      const jid = await blockingBoth(lp);
      // A caches the list with both blocks as it refuses them.
      assertRefused(await disco(w.juliet, jid), "Juliet, blocked");
      assertRefused(await disco(w.nurse, jid), "the Nurse, blocked");

      await w.p.deaf(async () => {
        await unblockOnB(lp, w.juliet);
        // The Nurse first: her refusal, confirmed, leaves A's stale list cached for Juliet's query.
        assertRefused(await disco(w.nurse, jid), "the Nurse, still blocked");
        const answer = await disco(w.juliet, jid);
        assert.equal(answer.attrs.type, "result", `Juliet, unblocked: ${answer.toString()}`);
        assert.ok(answer.getChild("query", DISCO_INFO)?.getChildren("feature").some((f) => f.attrs.var === RECEIPTS), answer.toString());
      });
    });

    it("a receipt owed to Juliet is sent when A's page is read after her unblock; the Nurse's, still blocked, is settled unsent", async () => {
      const lp = uniq("receipt-unblocked");
      const jid = await w.p.a.createAccount(lp);
      for (const user of [w.juliet, w.nurse]) await grantPresence(w.p.a, lp, user);
      // Each asks for a receipt (XEP-0184 §5) before any block; nobody reads the log yet.
      for (const [user, id] of [[w.juliet, "rj1"], [w.nurse, "rn1"]] as const) {
        await user.send(xml("message", { to: jid, type: "chat", id }, xml("body", {}, "ack me"), xml("request", { xmlns: RECEIPTS })));
      }
      const owed = async () =>
        Number((await w.p.sql.query("SELECT count(*) AS n FROM event e JOIN account a ON a.id = e.account_id WHERE a.localpart = $1 AND e.receipt_to IS NOT NULL AND NOT e.receipt_sent", [lp])).rows[0].n);
      await waitFor(async () => (await owed()) === 2, WAIT, "both receipts owed");
      for (const user of [w.juliet, w.nurse]) assert.equal((await w.p.a.request("PUT", path(bareOf(user)), { token: w.p.a.token(lp) })).status, 204, `${bareOf(user)} blocked on A`);
      // A caches the list with both blocks as it bounces their messages.
      for (const user of [w.juliet, w.nurse]) {
        const id = uniq("b-");
        await user.send(xml("message", { to: jid, type: "chat", id }, xml("body", {}, "while blocked")));
        await user.waitFor((s) => s.is("message") && s.attrs.id === id && s.attrs.type === "error", WAIT);
      }

      await w.p.deaf(async () => {
        await unblockOnB(lp, w.juliet);
        const mark = { juliet: w.juliet.stanzas.length, nurse: w.nurse.stanzas.length };
        const r = await w.p.a.request("GET", "/v1/events", { token: w.p.a.token(lp) });
        assert.equal(r.status, 200, r.text);
        const receipt = await w.juliet.waitFor((s) => w.juliet.stanzas.indexOf(s) >= mark.juliet && s.is("message") && s.getChild("received", RECEIPTS)?.attrs.id === "rj1", WAIT);
        assert.equal(receipt.attrs.from, jid);
        // Had the Nurse's gone, it would have been in the same outbox transaction as Juliet's, on the link before the sentinel's bounce.
        const end = await gatewaySentinel(w.nurse, w.p.a.domain);
        assert.deepEqual(
          receivedFrom(w.nurse, jid, mark.nurse, end).map((s) => s.toString()),
          [],
          "nothing to the Nurse",
        );
      });
      assert.equal(await owed(), 0, "both settled");
    });
  });
}
