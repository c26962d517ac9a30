// After its component link comes up, an instance publishes the accounts' presence again and
// rejoins their rooms: the XMPP server may have forgotten both (src/services/link-up.ts). With
// XMPP_LINK_MODE=all the server forgets only when it lost every instance's link (a restart), and
// then every link comes up again: one instance does it for all of them, the first whose link
// comes up, and records when (the link_republish row) in the transaction that records the rooms'
// joins. Another instance whose link comes up later leaves it to that one if it happened after
// its own link went down: what it would send again was sent after the outage that took its link.
import { sql, type AnyTx } from "./client.js";

/**
 * Claims the republish for a link that had been down for `downForMs` (on this instance's own
 * clock: elapsed time, so the instances' clocks never meet PostgreSQL's): true and recorded, or
 * false when another instance claimed it within that time. Concurrent claims queue on the row's
 * lock and the later ones see the first's, once it commits with what it recorded.
 */
export async function claimRepublish(tx: AnyTx, downForMs: number): Promise<boolean> {
  const rows = await sql<{ claimed: boolean }>(
    tx,
    `INSERT INTO link_republish (id, at) VALUES (1, clock_timestamp())
     ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at
     WHERE link_republish.at <= clock_timestamp() - make_interval(secs => $1::float8)
     RETURNING true AS claimed`,
    [downForMs / 1000],
  );
  return rows.length > 0;
}
