// Operations: liveness, readiness (Postgres and the component link; Redis reported, not required), Prometheus metrics.
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { Gateway } from "../context.js";

const Health = Type.Object({ status: Type.Literal("ok") });
/** As src/services/status.ts reports it; API.md: xmpp "up" holds a link, "standby" hands over to the holder. */
const Readiness = Type.Object({
  status: Type.Union([Type.Literal("ready"), Type.Literal("not ready")]),
  database: Type.Union([Type.Literal("up"), Type.Literal("down")]),
  xmpp: Type.Union([Type.Literal("up"), Type.Literal("standby"), Type.Literal("down")]),
  redis: Type.Optional(
    Type.Union([Type.Literal("up"), Type.Literal("down")], {
      description: "Only when REDIS_URL is set: whether Redis answers. It does not decide readiness: while it is down, rate limits and stream caps are not enforced (they fail open).",
    }),
  ),
});
/** A 503 may also say "stopping": from SIGTERM on (the drain, src/http/drain.ts), whatever the parts say. */
const Unready = Type.Object({ ...Readiness.properties, status: Type.Union([Type.Literal("ready"), Type.Literal("not ready"), Type.Literal("stopping")]) });

/** No token on these (the API's default security is the bearer token): probes and scrapers have none. */
const open = { tags: ["operations"], security: [] };

export function opsRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get("/healthz", { schema: { ...open, summary: "Process alive", response: { 200: Health } } }, async () => ({ status: "ok" as const }));

    app.get("/readyz", { schema: { ...open, summary: "Postgres reachable and the component link up: on this instance (xmpp: up) or on the instance holding it (xmpp: standby); 503 stopping once the instance is shutting down", response: { 200: Readiness, 503: Unready } } }, async (_req, reply) => {
      const { database, xmpp, redis } = await gw.status.ready();
      const parts = { database, xmpp, ...(redis ? { redis } : {}) };
      // Shutting down: out of the load balancer's rotation at once, while it still serves what comes.
      if (gw.shutdown.aborted) return reply.code(503).send({ status: "stopping", ...parts });
      // Not Redis: the limits it counts fail open, so without it this instance still serves.
      const ok = database === "up" && xmpp !== "down";
      return reply.code(ok ? 200 : 503).send({ status: ok ? "ready" : "not ready", ...parts });
    });

    const metricsText = { description: "Prometheus text exposition format", content: { "text/plain": { schema: { type: "string" } } } };
    app.get("/metrics", { schema: { ...open, summary: "Prometheus metrics", response: { 200: metricsText } } }, async (_req, reply) => {
      gw.metrics.linkUp.set(gw.status.linkUp ? 1 : 0);
      reply.type(gw.metrics.registry.contentType);
      return gw.metrics.registry.metrics();
    });
  };
}
