// Bearer JWTs, verified with jsonwebtoken against the configured keys only. The algorithm is
// pinned per key (HS256 for JWT_SECRET; RS256 or ES256 for JWT_PUBLIC_KEY, by key type, ES256 on
// P-256 only), so a token can never pick its own verification (no `none`, no HS256-with-the-public-key).
// Verified tokens are cached until they expire: signature checks are the costliest part of a
// small request, and a token is usually reused many times.
import jwt from "jsonwebtoken";
import { LRUCache } from "lru-cache";
import { publicKeyAlgorithm } from "../config.js";
import { AppError } from "../domain/errors.js";
import { accountLocalpart } from "../domain/jid.js";
import { prepareSessionResource } from "../domain/muc.js";

export interface Principal {
  localpart: string;
  admin: boolean;
  /** Session named by the token's `resource` claim. */
  resource: string | null;
  /** Expiry, ms since the epoch: later requests are refused, and its event streams end. Infinity
   * for a stream ticket minted before tickets stored their token's expiry. */
  exp: number;
  nbf: number;
  /** When the credential was issued (the token's `iat`, ms since the epoch); null when unknown (no
   * `iat`, a stream ticket): taken as issued before any session's end (session-ends.ts), and as
   * issued after any deletion of its account (a token issued before one is refused,
   * src/services/accounts.ts caller; a ticket goes with its account's row). */
  iat: number | null;
}

export interface JwtSettings {
  secret: string | undefined;
  publicKey: string | undefined;
  issuer: string | undefined;
  audience: string | undefined;
}

const CACHE_MAX = 10_000;
/** The last instant a Date holds (ECMA-262's time range: 8.64e15 ms, in the year 275760). */
const MAX_DATE_MS = 8.64e15;

/** The longest lifetime a minted token gets (POST /v1/tokens ttlSeconds, `balcony token --ttl`): a year. */
export const TOKEN_TTL_MAX_SECONDS = 31_536_000;

export class Auth {
  private readonly keys = new Map<jwt.Algorithm, string | Buffer>();
  private readonly cache = new LRUCache<string, Principal>({ max: CACHE_MAX });

  constructor(
    private readonly settings: JwtSettings,
    private readonly domain: string,
  ) {
    if (settings.secret) this.keys.set("HS256", settings.secret);
    // By key type, and for EC only on P-256 (src/config.ts publicKeyAlgorithm: a ConfigError otherwise).
    if (settings.publicKey) this.keys.set(publicKeyAlgorithm(settings.publicKey), settings.publicKey);
  }

  get canSign(): boolean {
    return this.settings.secret !== undefined;
  }

  verify(header: string | undefined): Principal {
    // RFC 9110 §11.1: the scheme name is case-insensitive.
    const m = header ? /^Bearer +([A-Za-z0-9_.~+/=-]+)$/i.exec(header) : null;
    if (!m) throw new AppError("unauthorized", "an Authorization: Bearer token is required");
    const token = m[1]!;
    const now = Date.now();
    const hit = this.cache.get(token);
    if (hit) {
      if (hit.exp <= now) throw new AppError("unauthorized", "token expired");
      if (hit.nbf > now) throw new AppError("unauthorized", "token not yet valid");
      return hit;
    }
    const principal = this.verifyUncached(token);
    this.cache.set(token, principal);
    return principal;
  }

  private verifyUncached(token: string): Principal {
    const decoded = jwt.decode(token, { complete: true });
    const alg = decoded?.header.alg as jwt.Algorithm | undefined;
    const key = alg ? this.keys.get(alg) : undefined;
    if (!alg || !key) throw new AppError("unauthorized", "token signed with an algorithm this gateway does not accept");
    let claims: jwt.JwtPayload;
    try {
      const opts: jwt.VerifyOptions & { complete?: false } = { algorithms: [alg] };
      if (this.settings.issuer) opts.issuer = this.settings.issuer;
      if (this.settings.audience) opts.audience = this.settings.audience;
      const out = jwt.verify(token, key, opts);
      if (typeof out === "string") throw new Error("payload is not a JSON object");
      claims = out;
    } catch (err) {
      const reason = err instanceof jwt.TokenExpiredError ? "token expired" : err instanceof jwt.NotBeforeError ? "token not yet valid" : "invalid token";
      throw new AppError("unauthorized", reason);
    }
    if (typeof claims.exp !== "number") throw new AppError("unauthorized", "token has no exp claim");
    const localpart = typeof claims.sub === "string" ? accountLocalpart(claims.sub, this.domain) : null;
    if (!localpart) throw new AppError("unauthorized", "token sub is not an account of this gateway");
    const scope = typeof claims.scope === "string" ? claims.scope.split(" ") : Array.isArray(claims.scope) ? (claims.scope as unknown[]) : [];
    let resource: string | null = null;
    if (claims.resource !== undefined) {
      // The resource becomes part of stanza addresses: it must be a valid resourcepart (RFC 7622 §3.4).
      resource = typeof claims.resource === "string" ? prepareSessionResource(claims.resource) : null;
      if (resource === null) throw new AppError("unauthorized", "token resource claim is not a valid resourcepart, is the rooms' own (rooms), or is one the XMPP server spells otherwise (RFC 6122 resourceprep)");
    }
    // An exp past the last instant a Date holds (a "never expires" signer's) is that instant.
    const exp = Math.min(claims.exp * 1000, MAX_DATE_MS);
    return { localpart, admin: scope.includes("admin"), resource, exp, nbf: (claims.nbf ?? 0) * 1000, iat: typeof claims.iat === "number" ? claims.iat * 1000 : null };
  }

  /** Signs a token for an account (POST /v1/tokens, `npm run token`). HS256 with JWT_SECRET. */
  sign(localpart: string, ttlSeconds: number, opts: { resource?: string | undefined; admin?: boolean } = {}): { token: string; expiresAt: Date } {
    // RFC 9110 §15.6.2: this gateway does not offer signing (it only verifies, with JWT_PUBLIC_KEY).
    if (!this.settings.secret) throw new AppError("not-implemented", "this gateway has no JWT_SECRET to sign tokens with: sign them with your own key");
    const exp = Math.floor(Date.now() / 1000) + ttlSeconds;
    const payload: Record<string, unknown> = { sub: localpart, exp };
    if (opts.admin) payload.scope = "admin";
    if (opts.resource) payload.resource = opts.resource;
    if (this.settings.issuer) payload.iss = this.settings.issuer;
    if (this.settings.audience) payload.aud = this.settings.audience;
    // jsonwebtoken adds `iat`: deleting the account revokes the token (src/services/accounts.ts caller).
    const token = jwt.sign(payload, this.settings.secret, { algorithm: "HS256" });
    return { token, expiresAt: new Date(exp * 1000) };
  }
}
