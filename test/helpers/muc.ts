// Group chat from the other side, for the tests of rooms with a real XMPP user in them (XEP-0045),
// and the gateway's event log as those tests read it.
import { after, before } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { startXmppServer, type XmppServer, type XmppServerKind } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, waitFor, type TestGateway } from "./gateway.js";

/** The harness's MUC service (scripts/harness/xmpp-server.ts). */
export const MUC = "conference.localhost";
export const NS_MUC = "http://jabber.org/protocol/muc";
export const NS_USER = `${NS_MUC}#user`;

/**
 * The world of a describe() about rooms, set up before its tests and stopped after them: an XMPP
 * server of `kind`, a gateway on it (with `env`; `onGateway` sees it first), and Juliet, a real
 * user of that server, connected (resource "muc") and available.
 */
export function roomWorld(kind: XmppServerKind, env: Record<string, string> = {}, onGateway?: (gw: TestGateway) => void) {
  const w = {} as { server: XmppServer; gw: TestGateway; juliet: XmppUser };
  before(async () => {
    w.server = await startXmppServer(kind);
    await w.server.registerUser("juliet", "pw-juliet");
    w.gw = await startTestGateway(w.server, env);
    onGateway?.(w.gw);
    w.juliet = await connectUser(w.server, "juliet", "pw-juliet", "muc");
    await w.juliet.sendPresence();
  });
  after(async () => {
    await w.juliet?.stop();
    await w.gw?.stop();
    await w.server?.stop();
  });
  return w;
}

export interface Ev {
  id: number;
  event: string;
  data: Record<string, unknown>;
}

/**
 * `user` enters a room and waits for its self-presence (status 110). A room it creates (201) is
 * configured with `config` (muc#roomconfig fields, XEP-0045 §10.1.3), or accepted as an instant
 * room without.
 */
export async function enterRoom(user: XmppUser, room: string, nick: string, config: Record<string, string> = {}): Promise<void> {
  await user.send(xml("presence", { to: `${room}/${nick}` }, xml("x", { xmlns: NS_MUC })));
  const self = await user.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/${nick}` && !!s.getChild("x", NS_USER)?.getChildren("status").some((c) => c.attrs.code === "110"), 10_000);
  if (!self.getChild("x", NS_USER)!.getChildren("status").some((c) => c.attrs.code === "201")) return;
  const fields = Object.entries(config).map(([v, value]) => xml("field", { var: v }, xml("value", {}, value)));
  if (fields.length > 0) fields.unshift(xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, `${NS_MUC}#roomconfig`)));
  await user.send(xml("iq", { to: room, type: "set", id: `cfg-${room}` }, xml("query", { xmlns: `${NS_MUC}#owner` }, xml("x", { xmlns: "jabber:x:data", type: "submit" }, ...fields))));
  const answer = await user.waitFor((s) => s.is("iq") && s.attrs.id === `cfg-${room}`, 10_000);
  assert.equal(answer.attrs.type, "result", `room configuration: ${answer.toString()}`);
}

/** An account's event log (the first 1,000 events), and a wait for the first event that matches. */
export function eventLog(gw: () => TestGateway) {
  const events = async (localpart: string): Promise<Ev[]> =>
    (await gw().request("GET", "/v1/events?since=0&limit=1000", { token: gw().token(localpart), headers: { accept: "application/json" } })).body.items as Ev[];
  const until = async (localpart: string, what: string, pred: (e: Ev) => boolean): Promise<Ev> => {
    let found: Ev | undefined;
    await waitFor(async () => (found = (await events(localpart)).find(pred)) !== undefined, 20_000, what);
    return found!;
  };
  return { events, until };
}

/**
 * `localpart` posts a group message to `room`: `user` (in the room) hears it from the account's
 * nick (its localpart), and it is `sent` once the room reflected it. The stanza `user` got.
 */
export async function heardInRoom(gw: TestGateway, user: XmppUser, localpart: string, room: string, body: string, wait = 15_000): Promise<XmlElement> {
  const posted = await gw.request("POST", "/v1/messages", { token: gw.token(localpart), body: { to: room, type: "groupchat", body } });
  assert.equal(posted.status, 202, posted.text);
  const heard = await user.waitFor((s) => s.is("message") && s.attrs.from === `${room}/${localpart}` && s.getChildText("body") === body, wait);
  let status = "";
  await waitFor(async () => ["sent", "failed"].includes((status = (await gw.request("GET", `/v1/messages/${posted.body.id}`, { token: gw.token(localpart) })).body.status)), wait, "the message's final status");
  assert.equal(status, "sent");
  return heard;
}
