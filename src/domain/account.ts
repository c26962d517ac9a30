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
