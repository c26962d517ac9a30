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

  constructor() {
    // The event-loop delay histogram samples on a timer: every 10 ms by default, which alone kept an
    // idle gateway at ~1% of a core here. 200 ms still catches the stalls worth alerting on.
    client.collectDefaultMetrics({ register: this.registry, prefix: "balcony_", eventLoopMonitoringPrecision: 200 });
  }
}
