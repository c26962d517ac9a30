// RFC 9110 §15.5.6: a method the target resource does not support is 405 Method Not Allowed,
// with an Allow header listing the methods it does. The router decides, not a copy of the route
// table: a request Fastify found no route for asks the same router (find-my-way, through
// findRoute) whether its concrete path is served with any other method.
import type { FastifyInstance, FastifyRequest, HTTPMethods } from "fastify";
import { AppError } from "../domain/errors.js";

/**
 * The methods the router serves at a concrete URL (query string and percent-encoding as the
 * router itself takes them), alphabetically. HEAD is among them wherever Fastify serves it,
 * i.e. for every GET route (exposeHeadRoutes). A URL that fits several routes gets all their
 * methods, as the router would route them: POST /v1/messages/batch, and GET and DELETE as the
 * message id "batch" (/v1/messages/:id). Empty for a path no route serves.
 */
export function allowedMethods(app: FastifyInstance, url: string): string[] {
  return app.supportedMethods.filter((method) => app.findRoute({ method: method as HTTPMethods, url }) !== null).sort();
}

/**
 * onRequest hook, registered before authentication: a request that matched no route, on a path
 * some route serves with other methods, is refused with `method-not-allowed` (405 + Allow) before
 * any token is asked for. The route's shape is public (the OpenAPI document), and no token makes
 * a wrong method right. Unknown paths go on to the not-found handler (404) as before.
 */
export async function refuseOtherMethods(req: FastifyRequest): Promise<void> {
  if (!req.is404) return;
  const allow = allowedMethods(req.server, req.url);
  if (allow.length === 0) return;
  throw new AppError("method-not-allowed", `${req.method} is not allowed on ${req.url.split("?")[0]}; allowed: ${allow.join(", ")}`, { allow });
}
