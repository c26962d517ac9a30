// Request and response schemas of the webhook routes (API.md "Webhooks (1.1)").
import { Type } from "@sinclair/typebox";
import { ATTEMPT_HISTORY, DELIVERY_STATUSES, type DeliveryStatus, DeliveryViewSchema, WEBHOOK_EVENT_TYPES, WEBHOOK_URL_MAX, WebhookEventTypeSchema, WebhookViewSchema } from "../domain/webhooks.js";
import { xmlText } from "./schemas.js";

const Url = Type.String({
  minLength: 1,
  maxLength: WEBHOOK_URL_MAX,
  description:
    "http or https URL, without white space, control characters or lone surrogates (percent-encode them, RFC 3986 §2); its host must not be a cloud metadata name nor resolve to a loopback, private, link-local or metadata address. A host that does not resolve yet is accepted: each delivery resolves and checks it again",
});
const Events = Type.Array(WebhookEventTypeSchema, { minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length * 2, description: "Event types to deliver; absent or null: all" });
const Description = xmlText(256, "A note for the endpoint's owners");

/** Any string: one that is not an endpoint's id (a UUID) names no endpoint, so it is 404 like any unknown id. */
export const WebhookId = Type.Object({ id: Type.String({ maxLength: 64, description: "The endpoint's id (a UUID)" }) });

export const CreateWebhook = Type.Object(
  {
    url: Url,
    events: Type.Optional(Events),
    description: Type.Optional(Description),
    account: Type.Optional(Type.String({ minLength: 1, maxLength: 3071, description: 'An account (localpart or bare JID), or "*" for every account. An admin may name any; another caller only its own (the default)' })),
  },
  { additionalProperties: false },
);

export const PatchWebhook = Type.Object(
  {
    url: Type.Optional(Url),
    events: Type.Optional(Type.Union([Events, Type.Null()])),
    description: Type.Optional(Type.Union([Description, Type.Null()])),
    status: Type.Optional(Type.Union([Type.Literal("enabled"), Type.Literal("disabled")], { description: "enabled also ends a failure streak: deliveries resume where they stopped, at once, with a fresh retry schedule (as they do after a change of url)" })),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const CreatedWebhook = Type.Object(
  { ...WebhookViewSchema.properties, secret: Type.String({ description: "whsec_ + base64 of 32 random bytes: shown only here and by rotate-secret" }) },
  { additionalProperties: false },
);

export const WebhookList = Type.Object({ items: Type.Array(WebhookViewSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) });

export const WebhookListQuery = Type.Object({
  cursor: Type.Optional(Type.String({ format: "uuid", description: "nextCursor of the previous page" })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  account: Type.Optional(Type.String({ minLength: 1, maxLength: 3071, description: "Admin only: one account's endpoints" })),
});

export const Rotated = Type.Object({
  secret: Type.String(),
  previousSecretExpiresAt: Type.String({ format: "date-time", description: "Until then deliveries are signed with both secrets (a secret from an earlier rotation whose time is not over, too: the 3 latest)" }),
});

/** API.md "Webhooks": the listing shows every attempt, grouped by delivery (what integration platforms debug an endpoint with). */
export const DELIVERIES_DESCRIPTION =
  `One item per event and endpoint (a delivery). \`attempts\` counts its attempts; \`responseStatus\`, \`responseExcerpt\` and \`error\` are the last one's; ` +
  `\`history\` lists each attempt oldest first with its time, response status, error and duration (the last ${ATTEMPT_HISTORY}). ` +
  "Deliveries recorded longer ago than EVENT_RETENTION are purged with their history.";

export const DeliveriesQuery = Type.Object({
  status: Type.Optional(
    Type.Unsafe<DeliveryStatus>(Type.Union(DELIVERY_STATUSES.map((s) => Type.Literal(s)), { description: "Only deliveries in this status (pending: waiting for a retry); each with its whole history" })),
  ),
  cursor: Type.Optional(Type.String({ pattern: "^[0-9]{1,18}$", description: "nextCursor of the previous page" })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
});

export const DeliveryList = Type.Object({ items: Type.Array(DeliveryViewSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) });

export const ReplayBody = Type.Object(
  {
    since: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: "Deliver again every event after this id (as ?since= of GET /v1/events)" }),
    account: Type.Optional(Type.String({ minLength: 1, maxLength: 3071, description: "Only this account's events (for an every-account endpoint); an account other than the caller's needs the admin scope" })),
  },
  { additionalProperties: false },
);

export const Replayed = Type.Object({ lanes: Type.Integer({ description: "Accounts with events after `since`: each of them is delivered again" }) });
