// POST /v1/messages, GET /v1/messages/{id}, GET /v1/messages?with= (RFC 6121 §5 over HTTP).
import { createHash, randomUUID } from "node:crypto";
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { AppError } from "../../domain/errors.js";
import { bare, jidToString, parseJid } from "../../domain/jid.js";
import { canonicalJson } from "../../domain/message.js";
import { messageStanza } from "../../xmpp/stanzas.js";
import type { NewOutbound } from "../../db/messages.js";
import type { Prisma } from "../../db/generated/client.js";
import { bareJid, callerAccount, requestedResource, type Gateway } from "../context.js";
import { Accepted, HistoryQuery, IdempotencyHeaders, MessageView, problemResponses, sendMessageBody, pageLimit } from "../schemas.js";

type MessageRow = Prisma.MessageGetPayload<{
  select: { id: true; direction: true; from: true; to: true; type: true; body: true; subject: true; thread: true; lang: true; state: true; receipt: true; status: true; error: true; createdAt: true; updatedAt: true; seq: true };
}>;

function view(r: MessageRow) {
  return {
    id: r.id,
    direction: r.direction,
    from: r.from,
    to: r.to,
    type: r.type,
    body: r.body as string | Record<string, string> | null,
    subject: r.subject as string | Record<string, string> | null,
    thread: r.thread,
    lang: r.lang,
    state: r.state,
    receipt: r.receipt,
    status: r.status,
    ...(r.error ? { error: r.error } : {}),
    cursor: String(r.seq),
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

/** Recipients repeat a lot (integrations post to the same JIDs): remember recent parses. */
const recipients = new Map<string, ReturnType<typeof parseJid>>();
function recipient(raw: string): ReturnType<typeof parseJid> {
  let jid = recipients.get(raw);
  if (jid === undefined) {
    jid = parseJid(raw);
    if (recipients.size >= 10_000) recipients.clear();
    recipients.set(raw, jid);
  }
  return jid;
}

export function messageRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/messages",
      {
        schema: {
          tags: ["messages"],
          summary: "Send a message (persisted before the 202)",
          body: sendMessageBody(gw.config.maxTextChars),
          headers: IdempotencyHeaders,
          response: { 202: Accepted, ...problemResponses(400, 401, 403, 404, 413, 422, 503) },
        },
      },
      async (req, reply) => {
        const account = await callerAccount(gw, req);
        const b = req.body;
        const to = recipient(b.to);
        if (!to) throw new AppError("invalid-jid", `to: "${b.to}" is not a valid JID (RFC 7622)`, { field: "body.to" });
        if (b.body === undefined && b.subject === undefined && b.state === undefined) {
          throw new AppError("validation-failed", "a message needs at least one of body, subject or state", { field: "body.body" });
        }
        const resource = requestedResource(req);
        const key = req.headers["idempotency-key"] ?? null;
        const requestHash = key === null ? null : createHash("sha256").update(canonicalJson(b)).digest("base64url");
        const from = bareJid(gw, account.localpart) + (resource ? `/${resource}` : "");
        const message: NewOutbound = {
          id: randomUUID(),
          accountId: account.id,
          peer: jidToString(bare(to)),
          from,
          to: jidToString(to),
          type: b.type ?? "chat",
          body: b.body as string | Record<string, string> | undefined,
          subject: b.subject as string | Record<string, string> | undefined,
          thread: b.thread ?? null,
          lang: b.lang ?? null,
          receipt: b.receipt ?? false,
          state: b.state ?? null,
          idempotencyKey: key,
          requestHash,
        };
        // The XMPP server drops a component that sends a stanza over its limit: refuse it here.
        const bound = 1024 + 6 * JSON.stringify([b.body, b.subject, b.thread]).length;
        if (bound > gw.config.xmpp.maxStanzaBytes) {
          const bytes = Buffer.byteLength(messageStanza(message).toString());
          if (bytes > gw.config.xmpp.maxStanzaBytes) {
            throw new AppError("payload-too-large", `the message would be a ${bytes}-byte stanza; the limit is ${gw.config.xmpp.maxStanzaBytes} bytes`, { field: "body.body" });
          }
        }
        const result = await gw.messaging.accept(message);
        if (!result.created && result.requestHash !== requestHash) {
          throw new AppError("idempotency-key-reused", "this Idempotency-Key was used within 24 h for a different request", { field: "headers.idempotency-key" });
        }
        if (!result.created) reply.header("idempotent-replayed", "true");
        // "queued": durable and on its way; it reads "sent" once the XMPP server has confirmed it.
        const status = result.created || result.status === "queued" ? "queued" : "sent";
        return reply.code(202).send({ id: result.id, status, createdAt: result.createdAt.toISOString() });
      },
    );

    app.get(
      "/v1/messages/:id",
      {
        schema: {
          tags: ["messages"],
          summary: "A message and its delivery status",
          params: Type.Object({ id: Type.String({ format: "uuid" }) }),
          response: { 200: MessageView, ...problemResponses(400, 401, 404) },
        },
      },
      async (req) => {
        const account = await callerAccount(gw, req);
        const row = await gw.messages.get(req.params.id);
        // Another account's message is reported exactly like a missing one: ids leak nothing.
        if (!row || row.accountId !== account.id) throw new AppError("message-not-found", `no message ${req.params.id}`);
        return view(row);
      },
    );

    app.get(
      "/v1/messages",
      {
        schema: {
          tags: ["messages"],
          summary: "Conversation history with one JID, both directions, newest first",
          querystring: HistoryQuery,
          response: { 200: Type.Object({ items: Type.Array(MessageView), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...problemResponses(400, 401, 404) },
        },
      },
      async (req) => {
        const account = await callerAccount(gw, req);
        const peer = parseJid(req.query.with);
        if (!peer || peer.resource) throw new AppError("invalid-jid", `with: "${req.query.with}" is not a bare JID`, { field: "querystring.with" });
        const limit = pageLimit(req.query.limit, 50, 200);
        const rows = await gw.messages.history(
          account.id,
          jidToString(peer),
          req.query.before ? Number(req.query.before) : null,
          req.query.after ? Number(req.query.after) : null,
          limit,
        );
        const items = rows.map(view);
        return { items, nextCursor: rows.length === limit ? String(rows[rows.length - 1]!.seq) : null };
      },
    );
  };
}
