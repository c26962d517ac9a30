// Group chat routes (API.md "Group chat (1.1, XEP-0045)"): the calling account's rooms.
import { Type, type Static } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { AppError } from "../../domain/errors.js";
import { assertSpeltAlike, nodeprepFolded } from "../../domain/stringprep-fold.js";
import { bare, jidToString, parseJid } from "../../domain/jid.js";
import { historySince, MAX_ROOMS, roomAddress, visibleNick, type HistoryRequest } from "../../domain/muc.js";
import { callerAccount, freshCallerAccount, resourcepart, type Gateway } from "../context.js";
import { problemResponses, xmlText } from "../schemas.js";
import { LangTextSchema } from "../../domain/events.js";

const tags = ["rooms"];
const RoomParam = Type.Object({
  room: Type.String({
    minLength: 3,
    maxLength: 3071,
    description: "The room's bare JID, e.g. lobby@conference.example.com. A join of one whose localpart stringprep folds (RFC 6122: `ß` to `ss`, as Prosody and ejabberd do) is 400 invalid-jid naming their spelling in `room`",
  }),
});
const Nick = Type.String({ minLength: 1, maxLength: 1023, pattern: "^[^\\u0000-\\u001F\\u007F]+$", description: "The account's nick in the room: an RFC 7622 resourcepart with a character other than white space, used prepared (otherwise 400 invalid-jid)" });
const Occupant = Type.Object({ nick: Type.String(), role: Type.String(), affiliation: Type.String(), jid: Type.Union([Type.String(), Type.Null()]) });
const RoomView = Type.Object({
  room: Type.String(),
  nick: Type.String(),
  status: Type.Union([Type.Literal("joining"), Type.Literal("joined")], { description: "joining: the room has not answered a (re)join yet" }),
  role: Type.Union([Type.String(), Type.Null()]),
  affiliation: Type.Union([Type.String(), Type.Null()]),
  subject: Type.Union([LangTextSchema, Type.Null()], { description: "The room's subject (XEP-0045 §8.1), by language where the room gave several" }),
  occupants: Type.Array(Occupant),
});
const JoinBody = Type.Object(
  {
    nick: Nick,
    password: Type.Optional(xmlText(1024)),
    history: Type.Optional(
      Type.Object(
        { maxStanzas: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })), since: Type.Optional(Type.String({ format: "date-time", description: "RFC 3339; sent to the room as XEP-0082 (UTC, upper-case T and Z)" })) },
        { additionalProperties: false, description: "What history the room sends on this join (XEP-0045 §7.2.15)" },
      ),
    ),
  },
  { additionalProperties: false },
);

/** A room from a path parameter: a bare JID with a localpart (RFC 7622), not on our own domain. */
function roomJid(raw: string, domain: string): string {
  const jid = parseJid(raw);
  const room = roomAddress(jid);
  if (room === null || jid!.domain === domain) throw new AppError("invalid-jid", `params.room: "${raw}" is not a room's bare JID`, { field: "params.room" });
  return room;
}

/**
 * A room to join: one whose name the XMPP server spells otherwise (src/domain/stringprep-fold.ts)
 * would never answer the join under ours; the account would be in it on the server all the same.
 */
function joinableRoom(room: string): string {
  const at = room.indexOf("@");
  assertSpeltAlike(room, `${nodeprepFolded(room.slice(0, at))}${room.slice(at)}`, "params.room", "room", "the room would answer the join from there, never from here");
  return room;
}

/** The history asked for, `since` in the form rooms read (XEP-0082). */
function historyOf(history: Static<typeof JoinBody>["history"]): { history?: HistoryRequest } {
  if (history?.since === undefined) return history ? { history } : {};
  const since = historySince(history.since);
  if (since === null) throw new AppError("validation-failed", `body.history.since: "${history.since}" is no instant`, { field: "body.history.since" });
  return { history: { ...history, since } };
}

export function roomRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  const account = async (req: Parameters<typeof callerAccount>[1]) => gw.accounts.ref(await callerAccount(gw, req));
  return async (app) => {
    app.put(
      "/v1/rooms/:room",
      { schema: { tags, summary: `Join a room (creating an instant room if there is none); 409 too-many-rooms when the account is in ${MAX_ROOMS.toLocaleString("en")} others (a refused join counts for none)`, params: RoomParam, body: JoinBody, response: { 200: RoomView, 201: RoomView, ...problemResponses(400, 401, 403, 404, 409, 503) } } },
      async (req, reply) => {
        const room = joinableRoom(roomJid(req.params.room, gw.accounts.domain));
        // The nick is the resourcepart of the occupant JID room/nick the join goes to (XEP-0045
        // §7.2.2): one the XMPP server cannot take (U+FFFF is not even XML) would drop the link on
        // every resend of this durable join. Sent and stored prepared (RFC 7622 §3.4).
        const nick = resourcepart(req.body.nick, "body.nick");
        if (!visibleNick(nick)) throw new AppError("invalid-jid", "body.nick: a nick of white space alone is no nick a room shows", { field: "body.nick" });
        const { view, created } = await gw.rooms.join(await account(req), room, { ...req.body, nick, ...historyOf(req.body.history) });
        return reply.code(created ? 201 : 200).send(view);
      },
    );
    app.get("/v1/rooms", { schema: { tags, summary: "The rooms the account joined", response: { 200: Type.Object({ items: Type.Array(RoomView) }), ...problemResponses(401, 404) } } }, async (req) => ({
      items: await gw.rooms.list(gw.accounts.ref(await freshCallerAccount(gw, req))),
    }));
    app.get("/v1/rooms/:room", { schema: { tags, summary: "A joined room: occupants and subject", params: RoomParam, response: { 200: RoomView, ...problemResponses(400, 401, 404) } } }, async (req) =>
      gw.rooms.get(await account(req), roomJid(req.params.room, gw.accounts.domain)),
    );
    app.delete("/v1/rooms/:room", { schema: { tags, summary: "Leave a room", params: RoomParam, response: { 204: Type.Null(), ...problemResponses(400, 401, 404) } } }, async (req, reply) => {
      await gw.rooms.leave(await account(req), roomJid(req.params.room, gw.accounts.domain));
      return reply.code(204).send(null);
    });
    app.put(
      "/v1/rooms/:room/subject",
      { schema: { tags, summary: "Change the room's subject", params: RoomParam, body: Type.Object({ subject: xmlText(1024) }, { additionalProperties: false }), response: { 202: Type.Null(), ...problemResponses(400, 401, 404) } } },
      async (req, reply) => {
        await gw.rooms.setSubject(await account(req), roomJid(req.params.room, gw.accounts.domain), req.body.subject);
        return reply.code(202).send(undefined as never);
      },
    );
    app.post(
      "/v1/rooms/:room/invitations",
      {
        schema: {
          tags,
          summary: "Invite someone through the room (XEP-0045 §7.8.2)",
          params: RoomParam,
          body: Type.Object({ jid: Type.String({ minLength: 3, maxLength: 3071 }), reason: Type.Optional(xmlText(1024)) }, { additionalProperties: false }),
          response: { 202: Type.Null(), ...problemResponses(400, 401, 404) },
        },
      },
      async (req, reply) => {
        const invitee = parseJid(req.body.jid);
        if (!invitee) throw new AppError("invalid-jid", `body.jid: "${req.body.jid}" is not a JID`, { field: "body.jid" });
        await gw.rooms.invite(await account(req), roomJid(req.params.room, gw.accounts.domain), jidToString(bare(invitee)), req.body.reason ?? null);
        return reply.code(202).send(undefined as never);
      },
    );
  };
}
