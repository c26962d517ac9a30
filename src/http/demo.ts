// The demo web page at /demo: static files (src/http/demo/, copied to dist/http/demo/ by the
// build), no build step. It talks to the API like any client, with the token a person pastes,
// and follows the event stream with EventSource through a stream ticket.
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";

const ROOT = fileURLToPath(new URL("./demo/", import.meta.url));
// The page runs only its own script and style and talks only to this origin: a message body can
// never become markup or code (the script also only ever sets textContent).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export async function demoPage(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: ROOT,
    prefix: "/demo/",
    decorateReply: false,
    // One route per file, found at start-up: nothing else under /demo/ reaches the file system.
    wildcard: false,
    schemaHide: true,
    setHeaders: (res) => {
      res.setHeader("content-security-policy", CSP);
      res.setHeader("referrer-policy", "no-referrer");
      res.setHeader("x-content-type-options", "nosniff");
    },
  });
  app.get("/demo", { schema: { hide: true } }, (_req, reply) => reply.redirect("/demo/"));
}
