// Webhook endpoints as the API manages them (API.md "Webhooks (1.1)"): an account's own, or an
// admin's for every account. A caller sees only the endpoints it may manage: another account's
// is "not found", not "forbidden", so ids cannot be probed. Targets are checked (SSRF) whenever
// a URL is set; the dispatcher checks them again on every connection.
import { randomUUID } from "node:crypto";
import type { DeliveryRow, WebhookChange, WebhookRow, Webhooks as WebhookStore } from "../db/webhooks.js";
import { accountJid } from "../domain/account.js";
import { AppError } from "../domain/errors.js";
import { isUuid } from "../domain/ids.js";
import { pageOf, type Page } from "../domain/page.js";
import { deliveryId, ROTATION_OVERLAP_MS, WEBHOOKS_PER_ACCOUNT, type DeliveryStatus, type DeliveryView, type WebhookView } from "../domain/webhooks.js";
import type { WebhookPort } from "./ports.js";

/** Who is asking: an admin (every endpoint) or an account (its own). */
export type WebhookScope = { admin: true } | { admin: false; accountId: number };

export interface NewWebhookInput {
  url: string;
  events?: string[];
  description?: string;
}


const iso = (d: Date | null) => (d ? d.toISOString() : null);

export class Webhooks {
  constructor(
    private readonly store: WebhookStore,
    private readonly port: WebhookPort,
    private readonly domain: string,
  ) {}

  view(r: WebhookRow): WebhookView {
    return {
      id: r.id,
      account: r.localpart === null ? "*" : accountJid(r.localpart, this.domain),
      url: r.url,
      events: r.events as WebhookView["events"],
      description: r.description,
      status: r.disabledAt ? "disabled" : "enabled",
      disabledAt: iso(r.disabledAt),
      disabledReason: r.disabledReason,
      failingSince: iso(r.failingSince),
      createdAt: r.createdAt.toISOString(),
      updatedAt: r.updatedAt.toISOString(),
    };
  }

  /** POST /v1/webhooks: `accountId` null for every account (admins only: the route checks). */
  async create(accountId: number | null, input: NewWebhookInput): Promise<WebhookView & { secret: string }> {
    await this.port.checkTarget(input.url, "body.url");
    const secret = this.port.newSecret();
    const row = await this.store.create(
      { id: randomUUID(), accountId, url: input.url, events: input.events ? [...new Set(input.events)] : null, description: input.description ?? null, secret },
      WEBHOOKS_PER_ACCOUNT,
    );
    if (!row) throw new AppError("too-many-webhooks", `at most ${WEBHOOKS_PER_ACCOUNT} webhooks ${accountId === null ? "for every account" : "per account"}`);
    return { ...this.view(row), secret };
  }

  /** The endpoint, if the caller may manage it. */
  async get(scope: WebhookScope, id: string): Promise<WebhookRow> {
    const row = isUuid(id) ? await this.store.find(id) : null;
    if (!row || (!scope.admin && row.accountId !== scope.accountId)) throw new AppError("webhook-not-found", `no webhook ${id}`);
    return row;
  }

  /** An account's endpoints; for an admin every endpoint, or one account's (`accountId`). */
  async list(scope: WebhookScope, accountId: number | null, cursor: string | null, limit: number): Promise<Page<WebhookView>> {
    const rows = await this.store.list(scope.admin ? accountId : scope.accountId, cursor, limit + 1);
    return pageOf(rows, limit, (r) => this.view(r), (r) => r.id);
  }

  async update(scope: WebhookScope, id: string, change: WebhookChange): Promise<WebhookView> {
    await this.get(scope, id);
    if (change.url !== undefined) await this.port.checkTarget(change.url, "body.url");
    if (change.events) change = { ...change, events: [...new Set(change.events)] };
    const row = await this.store.update(id, change);
    if (!row) throw new AppError("webhook-not-found", `no webhook ${id}`);
    return this.view(row);
  }

  async delete(scope: WebhookScope, id: string): Promise<void> {
    await this.get(scope, id);
    if (!(await this.store.delete(id))) throw new AppError("webhook-not-found", `no webhook ${id}`);
  }

  /** A new secret; the old one signs too for ROTATION_OVERLAP_MS, so receivers can switch without losing a delivery. */
  async rotate(scope: WebhookScope, id: string): Promise<{ secret: string; previousSecretExpiresAt: string }> {
    await this.get(scope, id);
    const secret = this.port.newSecret();
    const row = await this.store.rotate(id, secret, ROTATION_OVERLAP_MS);
    if (!row) throw new AppError("webhook-not-found", `no webhook ${id}`);
    return { secret, previousSecretExpiresAt: row.previousSecretUntil!.toISOString() };
  }

  async deliveries(scope: WebhookScope, id: string, status: DeliveryStatus | null, cursor: number | null, limit: number): Promise<Page<DeliveryView>> {
    const hook = await this.get(scope, id);
    const rows = await this.store.deliveries(id, status, cursor, limit + 1);
    return pageOf(rows, limit, (r) => this.deliveryView(hook.id, r), (r) => String(r.id));
  }

  /** POST /v1/webhooks/{id}/replay: every event after `since` again (of one account, or all). */
  async replay(scope: WebhookScope, id: string, since: number, accountId: number | null): Promise<{ lanes: number }> {
    await this.get(scope, id);
    return { lanes: await this.store.replay(id, since, accountId) };
  }

  private deliveryView(webhookId: string, r: DeliveryRow): DeliveryView {
    return {
      webhookId: deliveryId(webhookId, r.accountId, r.seq, r.type),
      account: accountJid(r.localpart, this.domain),
      eventId: r.seq,
      type: r.type,
      status: r.status,
      attempts: r.attempts,
      responseStatus: r.responseStatus,
      responseExcerpt: r.responseExcerpt,
      error: r.error,
      createdAt: r.createdAt.toISOString(),
      lastAttemptAt: r.lastAttemptAt.toISOString(),
      nextAttemptAt: iso(r.nextAttemptAt),
      history: r.history,
    };
  }
}
