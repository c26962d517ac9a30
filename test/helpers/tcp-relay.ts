// A TCP relay in front of a real server (PostgreSQL, an XMPP server's component port), so a test
// can catch a request in flight: `hold` keeps what the server answers until released (`holdClient`:
// on one connection only), `stall` what clients send; `cut` drops every connection and refuses new ones until `down` is
// cleared; `tap` sees what clients send.
import { createServer, connect, type Server, type Socket } from "node:net";
import { freePort } from "../../scripts/harness/ports.js";

export class TcpRelay {
  private readonly tcp: Server;
  private readonly upstreams = new Set<Socket>();
  private readonly sockets = new Set<Socket>();
  /** Each client connection's connection to the server. */
  private readonly upstreamOf = new Map<Socket, Socket>();
  private held = false;
  /** While true, new connections are closed at once. */
  down = false;
  /** Sees what each client sends (to count stanzas on the way), the client's socket with it. */
  tap: ((chunk: Buffer, client: Socket) => void) | null = null;

  constructor(target: number) {
    this.tcp = createServer((client) => {
      if (this.down) return void client.destroy();
      const upstream = connect(target, "127.0.0.1");
      client.on("data", (chunk: Buffer) => this.tap?.(chunk, client));
      client.pipe(upstream);
      upstream.pipe(client);
      if (this.held) upstream.pause();
      this.upstreams.add(upstream);
      this.upstreamOf.set(client, upstream);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("error", () => undefined).on("close", () => {
          this.sockets.delete(s);
          this.upstreams.delete(upstream);
          this.upstreamOf.delete(client);
          client.destroy();
          upstream.destroy();
        });
      }
    });
  }

  /**
   * Listens on a free port of 127.0.0.1, reserved as the harness's servers' are (not one the
   * kernel would hand out while another test file's server has yet to bind it); resolves the port.
   */
  async listen(): Promise<number> {
    const port = await freePort();
    await new Promise<void>((resolve, reject) => this.tcp.once("error", reject).listen(port, "127.0.0.1", resolve));
    return port;
  }

  /** Holds (or releases) everything the server sends on every connection, present and future. */
  hold(on: boolean): void {
    this.held = on;
    for (const u of this.upstreams) {
      if (on) u.pause();
      else u.resume();
    }
  }

  /** Holds (or releases) what the server sends on one client's connection (as `tap` named it). */
  holdClient(client: Socket, on: boolean): void {
    const upstream = this.upstreamOf.get(client);
    if (!upstream) throw new Error("no such connection (closed?)");
    if (on) upstream.pause();
    else upstream.resume();
  }

  /**
   * Stops (or goes on) reading what clients send, on every open connection: their writes back up
   * in their own sockets, as to a server that reads nothing.
   */
  stall(on: boolean): void {
    for (const [client, upstream] of this.upstreamOf) {
      if (on) client.unpipe(upstream).pause();
      else client.pipe(upstream).resume();
    }
  }

  /** Drops every connection and refuses new ones until `down` is set false. */
  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
  }

  close(): void {
    this.cut();
    this.tcp.close();
  }
}
