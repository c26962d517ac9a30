// The HTTP side of a lame-duck shutdown (README "Deploying"). On SIGTERM the instance takes no
// new connection: a load balancer's check of it fails at once, and a connection the balancer opens
// is refused, which it retries on another instance (nothing was sent: HAProxy's `retry-on
// conn-failure`, nginx's `proxy_next_upstream error`). For the drain period (SHUTDOWN_DRAIN) it
// still serves what comes on the connections already open, each answer with `Connection: close`
// (src/http/app.ts; RFC 9112 §9.6), so that every client opens its next connection elsewhere
// after its answer. The drain ends once no connection is left, or when the period is over; only
// then does Fastify's close end the connections still idle and wait for the requests in flight.
//
// Node's own server.close() (Node 19 and later) destroys every idle keep-alive connection at once.
// Under load an idle one is one whose client is sending its next request at that moment: it gets a
// reset (undici UND_ERR_SOCKET "other side closed", ECONNRESET) and cannot tell whether its request
// was taken. A connection accepted just before the listener closed has not sent its request yet
// either: it is served too, not cut.
import type { Server } from "node:http";
import { Server as NetServer, type Socket } from "node:net";

export class HttpDrain {
  private readonly sockets = new Set<Socket>();
  private emptied: (() => void) | null = null;
  /** end() was called: no drain waits any more. */
  private ended = false;

  constructor(private readonly server: Server) {
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.once("close", () => {
        this.sockets.delete(socket);
        if (this.sockets.size === 0) this.emptied?.();
      });
    });
  }

  /**
   * Closes the listener and waits until no connection is open, at most `periodMs`; returns how many
   * are still open. The caller marks answers `Connection: close` from the start (the gateway's
   * shutdown signal).
   */
  async drain(periodMs: number): Promise<number> {
    // The listening socket only: http.Server.close() would also destroy the idle connections now.
    // Fastify's close calls it later, and takes its ERR_SERVER_NOT_RUNNING as closed.
    if (this.server.listening) NetServer.prototype.close.call(this.server);
    if (this.sockets.size === 0 || periodMs <= 0 || this.ended) return this.sockets.size;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, periodMs);
      this.emptied = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.emptied = null;
    return this.sockets.size;
  }

  /** Ends the drain now (a second signal: the operator will not wait): the connections left are closed as at its end. */
  end(): void {
    this.ended = true;
    this.emptied?.();
  }
}
