// Another instance's backend as pg_stat_activity (aliased `a`) shows it: its pid, where it connects
// from, and how long ago its last statement ended, on PostgreSQL's clock. Instances prove they are
// alive by a statement at least four times within the timeout (src/db/lease.ts beat,
// src/db/notify.ts), which Postgres stamps as state_change; the lease takeover and the listener
// sweep both judge a backend by that age.
export const BACKEND_AGE = `a.pid, concat(a.client_addr, ':', a.client_port) AS client, (extract(epoch FROM clock_timestamp() - a.state_change) * 1000)::float8 AS age_ms`;

/** A row with BACKEND_AGE's columns. */
export interface BackendAge {
  pid: number;
  client: string;
  age_ms: number;
}
