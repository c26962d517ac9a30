// Produces the OpenAPI document without a running gateway: the routes are registered (their
// schemas are all the document needs) but never called.
import { buildApp } from "./app.js";
import { loadConfig } from "../config.js";
import type { Gateway } from "./context.js";
import { Metrics } from "./metrics.js";

export async function openApiDocument(): Promise<unknown> {
  const config = loadConfig({ XMPP_SECRET: "unused", JWT_SECRET: "unused-unused-unused-unused-unused" });
  // What route registration touches (the SSE writer's shutdown signal, the metrics registry).
  const app = await buildApp({ config, metrics: new Metrics(), shutdown: new AbortController().signal } as Gateway);
  await app.ready();
  const doc = app.swagger();
  await app.close();
  return doc;
}
