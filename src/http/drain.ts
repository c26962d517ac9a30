// The HTTP side of a lame-duck shutdown (README "Deploying"). From SIGTERM on every answer says
// `Connection: close` (src/http/app.ts; RFC 9112 §9.6), so that each client opens its next
// connection elsewhere, and `/readyz` says 503, so that a load balancer's check takes the instance
// out of its rotation. The listener stays open until requests stop coming (QUIET_MS without one,
// health checks aside): what still comes on a new connection before the balancer has noticed is
// served too. The drain ends once the listener is closed and no connection is left, or when the
// period (SHUTDOWN_DRAIN) is over; only then does Fastify's close end the connections still idle
// and wait for the requests in flight.
//
// Why the listener is not closed at once: closing it resets every connection the kernel has
// completed but the process has not accepted yet (its accept queue), and under load, or while the
// event loop is busy, the balancer's newest connection is there with its request already sent. The
// balancer cannot retry that one as a refused connection (HAProxy closes its client's connection
// instead, undici's UND_ERR_SOCKET), and its client cannot tell whether a POST was taken. Closed
// once quiet, the queue is empty: the balancer sends nothing more.
//
// Why idle connections are not closed at once either: Node's own server.close() (Node 19 and
// later) destroys every idle keep-alive connection, and under load an idle one is one whose client
// is sending its next request at that moment: it gets a reset just the same.
import type { IncomingMessage, Server } from "node:http";
import { Server as NetServer, type Socket } from "node:net";

/** How long no request may come (health checks aside) before the listener closes during a drain. */
export const QUIET_MS = 500;

/** A load balancer's or supervisor's check: it says nothing about whether clients still come. */
const isProbe = (req: IncomingMessage) => req.url === "/readyz" || req.url === "/healthz";

export class HttpDrain {
  private readonly sockets = new Set<Socket>();
  /** Called when something a drain waits on happened: a connection closed, a request came. */
  private changed: (() => void) | null = null;
  /** end() was called: no drain waits any more. */
  private ended = false;
  private lastRequest = 0;

  constructor(private readonly server: Server) {
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.once("close", () => {
        this.sockets.delete(socket);
        this.changed?.();
      });
    });
    server.on("request", (req: IncomingMessage) => {
      if (!isProbe(req)) this.lastRequest = performance.now();
    });
  }

  /**
   * Serves on until no request has come for `quietMs`, then closes the listener, and waits until
   * no connection is open: `periodMs` at most for all of it. Returns how many are still open. The
   * caller marks answers `Connection: close` from the start (the gateway's shutdown signal).
   */
  async drain(periodMs: number, quietMs = QUIET_MS): Promise<number> {
    if (periodMs > 0 && !this.ended) {
      this.lastRequest = performance.now();
      await new Promise<void>((resolve) => {
        let quiet: NodeJS.Timeout | undefined;
        // The period is over when its timer says so, not by the clock: Node fires a timer up to
        // 2 ms early (whole milliseconds, from the loop's time), and a check by the clock then found
        // it not over with the listener closed and an idle connection open: no timer was armed
        // again, and the drain waited for that connection to close, past the forced exit (CI).
        let periodOver = false;
        const period = setTimeout(() => ((periodOver = true), this.changed?.()), periodMs);
        this.changed = () => {
          const now = performance.now();
          const over = this.ended || periodOver;
          if (over || now - this.lastRequest >= quietMs) this.closeListener();
          if (!this.server.listening && (this.sockets.size === 0 || over)) {
            clearTimeout(period);
            clearTimeout(quiet);
            this.changed = null;
            return resolve();
          }
          // Looked at again when the quiet period since the last request would be over.
          clearTimeout(quiet);
          if (this.server.listening) quiet = setTimeout(() => this.changed?.(), Math.max(1, quietMs - (now - this.lastRequest)));
        };
        this.changed();
      });
    }
    this.closeListener();
    return this.sockets.size;
  }

  /** Ends the drain now (a second signal: the operator will not wait): the connections left are closed as at its end. */
  end(): void {
    this.ended = true;
    this.changed?.();
  }

  /**
   * The listening socket only: http.Server.close() would also destroy the idle connections now.
   * Fastify's close calls it later, and takes its ERR_SERVER_NOT_RUNNING as closed.
   */
  private closeListener(): void {
    if (this.server.listening) NetServer.prototype.close.call(this.server);
  }
}
