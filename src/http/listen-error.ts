// Why the HTTP listener could not start, in one line naming HOST and PORT: what `balcony start`
// and `node dist/server.js` print instead of Node's stack. Every cause here is exit 1, a failed
// start and not a configuration error (exit 2, src/config.ts: HOST's syntax is checked there):
// the same HOST and PORT may work a moment later (the old process still holds the port during a
// restart; a floating address not yet assigned; DNS not ready at boot), so a supervisor that
// restarts on failure is right to try again.

export class ListenError extends Error {
  constructor(
    message: string,
    /** Node's code (EADDRINUSE, EADDRNOTAVAIL, ENOTFOUND...), or "listen" for anything else. */
    readonly code: string,
  ) {
    super(message);
    this.name = "ListenError";
  }
}

export function listenError(err: unknown, host: string, port: number): ListenError {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === "string" ? e.code : "";
  const at = `PORT ${port} on HOST ${host}`;
  const detail: Record<string, string> = {
    EADDRINUSE: `${at} is in use (EADDRINUSE): stop what listens there, or set PORT to a free port`,
    EADDRNOTAVAIL: `HOST ${host} is not an address of this machine (EADDRNOTAVAIL): set HOST to one of its addresses, 0.0.0.0 (every IPv4 address) or :: (every address)`,
    EACCES: `${at} needs privileges this process lacks (EACCES: ports below 1024): set PORT to 1024 or above`,
    EAFNOSUPPORT: `HOST ${host}: this machine has no such address family (EAFNOSUPPORT, e.g. IPv6 turned off): set HOST to an IPv4 address`,
    ENOTFOUND: `HOST ${host} does not resolve to an address (ENOTFOUND): set HOST to an address of this machine, or a name that resolves to one`,
    EAI_AGAIN: `HOST ${host} could not be resolved now (EAI_AGAIN: DNS did not answer): set HOST to an address, or start again when DNS answers`,
  };
  const message = detail[code] ?? `cannot listen on ${at}: ${typeof e?.message === "string" ? e.message : String(err)}`;
  return new ListenError(message, code || "listen");
}
