// A hosted account as every layer sees it.
export interface Account {
  id: number;
  localpart: string;
  createdAt: Date;
}

/** An account together with its bare JID on the gateway's domain. */
export interface AccountRef {
  id: number;
  /** The account's bare JID. */
  jid: string;
}

export const accountJid = (localpart: string, domain: string): string => `${localpart}@${domain}`;

/**
 * Whether a credential issued at `issuedAt` (ms since the epoch, from a JWT's `iat`: whole
 * seconds) is an earlier account's: issued before the latest deletion of its localpart
 * (`deletedAt`, null when it was never deleted). A token names its account by localpart only, so
 * without this an account created again under the localpart would be the old token's. `iat` is
 * truncated to the second: a token issued in the second of the deletion, before or after it, can
 * not be told apart, and is accepted (a token minted right after the account is created again
 * must work); only a token from an earlier second is refused. Unknown `issuedAt` (a token without
 * `iat`) is accepted: nothing tells when it was issued.
 */
export function issuedBeforeDeletion(issuedAt: number | null, deletedAt: Date | null): boolean {
  if (issuedAt === null || deletedAt === null) return false;
  return issuedAt < Math.floor(deletedAt.getTime() / 1000) * 1000;
}
