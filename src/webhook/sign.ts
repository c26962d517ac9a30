// Standard Webhooks 1.0 signatures ("Signature scheme"): `v1,` + base64 of HMAC-SHA256 over
// `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the base64-decoded part of a `whsec_`
// secret; several space-separated while a rotated-out secret still signs.
import { createHmac, randomBytes } from "node:crypto";

const PREFIX = "whsec_";

/** A new secret: `whsec_` + base64 of 32 random bytes (the spec asks for 24 to 64). */
export function newSecret(): string {
  return PREFIX + randomBytes(32).toString("base64");
}

function key(secret: string): Buffer {
  return Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, "base64");
}

/** The webhook-signature header for a message, one signature per secret. */
export function signatures(secrets: readonly string[], msgId: string, timestamp: number, body: string): string {
  const signed = `${msgId}.${timestamp}.${body}`;
  return secrets.map((s) => "v1," + createHmac("sha256", key(s)).update(signed).digest("base64")).join(" ");
}
