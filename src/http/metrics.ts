// Prometheus metrics. One registry per gateway (tests run several in one process).
import client from "prom-client";

export class Metrics {
  readonly registry = new client.Registry();
  readonly httpDuration = new client.Histogram({
    name: "balcony_http_request_duration_seconds",
    help: "HTTP request duration by route and status",
    labelNames: ["method", "route", "status"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly messagesAccepted = new client.Counter({ name: "balcony_messages_accepted_total", help: "Outbound messages accepted (persisted)", registers: [this.registry] });
  readonly streams = new client.Gauge({ name: "balcony_event_streams", help: "Open SSE event streams on this instance", registers: [this.registry] });
  readonly linkUp = new client.Gauge({ name: "balcony_xmpp_link_up", help: "1 when the component link is online", registers: [this.registry] });
  readonly written = new client.Counter({ name: "balcony_messages_written_total", help: "Outbound message stanzas written to the component link by this instance (resends included)", registers: [this.registry] });

  readonly webhookAttempts = new client.Counter({
    name: "balcony_webhook_attempts_total",
    help: "Webhook delivery attempts by outcome: delivered, retry (failed, tried again later), failed (for good)",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly webhookDuration = new client.Histogram({
    name: "balcony_webhook_attempt_duration_seconds",
    help: "Duration of webhook delivery attempts, request sent to response read",
    labelNames: ["outcome"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  /** Where the queue depths come from (the wiring sets it); read at each scrape. */
  webhookDepths: (() => Promise<{ webhookId: string; depth: number }[]>) | null = null;

  constructor() {
    const depths = () => this.webhookDepths?.().catch(() => null) ?? Promise.resolve(null);
    new client.Gauge({
      name: "balcony_webhook_queue_depth",
      help: "Events not yet settled per webhook endpoint (an upper bound where the endpoint filters event types)",
      labelNames: ["webhook"],
      registers: [this.registry],
      async collect() {
        const rows = (await depths()) ?? [];
        this.reset();
        for (const d of rows) this.set({ webhook: d.webhookId }, d.depth);
      },
    });
    // The event-loop delay histogram samples on a timer of its own (native, apart from src/cadence.ts),
    // and every sample wakes an idle gateway (0.2-0.3 ms of CPU a wake-up here): every 10 ms by
    // default kept it at ~1% of a core, 200 ms at ~0.1%. Sampled once a second, every stall of a
    // second or more is seen, and a shorter one with a chance in proportion to its length.
    client.collectDefaultMetrics({ register: this.registry, prefix: "balcony_", eventLoopMonitoringPrecision: 1000 });
  }
}
