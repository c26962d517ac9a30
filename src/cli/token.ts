// `balcony token`: mints a token with the gateway's JWT_SECRET, as POST /v1/tokens does, without
// the gateway (the first admin token has nothing to call the API with). `npm run token`
// (scripts/token.ts) is the same minting under its older flags.
import type { Command } from "commander";
import { parseDuration, type Config } from "../config.js";
import { accountJid } from "../domain/account.js";
import { AppError } from "../domain/errors.js";
import { accountLocalpart } from "../domain/jid.js";
import { Auth, TOKEN_TTL_MAX_SECONDS } from "../http/auth.js";
import { sessionResourcepart } from "../http/context.js";
import { CliError, commandConfig, EXIT, run, UNUSED } from "./common.js";

export interface TokenRequest {
  /** Localpart or bare JID on XMPP_DOMAIN; with `admin` and nothing else, "admin". */
  account?: string | undefined;
  admin?: boolean;
  /** Lifetime: seconds, or a duration such as 90s, 15m, 12h, 7d. */
  ttl?: string;
  resource?: string | undefined;
}

export interface MintedToken {
  token: string;
  /** The `sub` claim: the account's localpart. */
  account: string;
  jid: string;
  admin: boolean;
  resource: string | null;
  expiresAt: string;
}

/** Signs a token as the gateway would accept it (HS256 with JWT_SECRET; JWT_ISSUER/JWT_AUDIENCE when set). */
export function mintToken(config: Config, req: TokenRequest): MintedToken {
  const raw = req.account ?? (req.admin ? "admin" : undefined);
  if (raw === undefined) throw new CliError("usage", "name the account (a localpart or bare JID), or pass --admin for an admin token", undefined, EXIT.usage);
  const localpart = accountLocalpart(raw, config.xmpp.domain);
  if (!localpart) throw new CliError("invalid-jid", `"${raw}" is not a localpart, nor a bare JID on ${config.xmpp.domain} (RFC 7622 §3.3)`, undefined, EXIT.usage);
  const resource = req.resource === undefined ? null : sessionResource(req.resource);
  let ttlMs: number;
  try {
    ttlMs = parseDuration("--ttl", req.ttl ?? "24h");
  } catch (err) {
    throw new CliError("usage", (err as Error).message, undefined, EXIT.usage);
  }
  // As POST /v1/tokens allows (ttlSeconds); beyond, exp would not even be a date.
  if (!(ttlMs >= 1000 && ttlMs <= TOKEN_TTL_MAX_SECONDS * 1000)) throw new CliError("usage", `--ttl must be between 1 second and ${TOKEN_TTL_MAX_SECONDS / 86_400} days`, undefined, EXIT.usage);
  if (!config.jwt.secret) {
    throw new CliError("no-jwt-secret", "JWT_SECRET is not set: only the gateway's HS256 secret can sign tokens it accepts", "set JWT_SECRET as the gateway has it (with only JWT_PUBLIC_KEY, tokens come from your own issuer)", EXIT.usage);
  }
  const admin = req.admin === true;
  const { token, expiresAt } = new Auth(config.jwt, config.xmpp.domain).sign(localpart, Math.floor(ttlMs / 1000), { admin, resource: resource ?? undefined });
  return { token, account: localpart, jid: accountJid(localpart, config.xmpp.domain), admin, resource, expiresAt: expiresAt.toISOString() };
}

/** The session the token speaks for, checked as POST /v1/tokens checks `resource` (not "rooms", the rooms' own). */
function sessionResource(raw: string): string {
  try {
    return sessionResourcepart(raw, "--resource");
  } catch (err) {
    if (err instanceof AppError) throw new CliError("invalid-resource", err.detail, undefined, EXIT.usage);
    throw err;
  }
}

export function tokenCommand(program: Command): void {
  program
    .command("token")
    .summary("mint a token for an account (HS256 with JWT_SECRET)")
    .description(
      "Mints a token the gateway accepts, signed with JWT_SECRET (HS256) from the environment as POST /v1/tokens " +
        "does, without calling the gateway: the way to the first admin token. Prints the token alone (for $(...)); " +
        "--json adds its claims. Needs JWT_SECRET and XMPP_DOMAIN only, and does not check that the account exists.",
    )
    .argument("[account]", "localpart or bare JID (default with --admin: admin)")
    .option("--admin", "an admin token (scope admin: the admin routes)")
    .option("--ttl <duration>", "lifetime: seconds or 90s, 15m, 12h, 7d", "24h")
    .option("--resource <resource>", "the session the token speaks for (claim resource)")
    .addHelpText("after", "\nExamples:\n  export ADMIN=$(balcony token --admin)\n  balcony token romeo --resource phone --ttl 1h --json")
    .action((account: string | undefined, opts: { admin?: boolean; ttl: string; resource?: string }, cmd: Command) =>
      run(cmd, async (out) => {
        const minted = mintToken(commandConfig(UNUSED.xmpp), { account, admin: opts.admin, ttl: opts.ttl, resource: opts.resource });
        if (out.json) return out.data(minted);
        out.line(minted.token);
        if (out.tty) out.note(`${minted.jid}${minted.admin ? ", admin" : ""}${minted.resource ? `, resource ${minted.resource}` : ""}, expires ${minted.expiresAt}`);
      }),
    );
}
