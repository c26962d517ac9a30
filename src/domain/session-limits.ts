// Bounds on one account's sessions (API.md Model: a session is one resource). RFC 6121 sets none,
// but each available session is broadcast to every subscriber, answers every probe and hears the
// account's other sessions (§4.2.2, §4.3.2): 10,000 sessions set available by PUT /v1/presence
// over a roster of 10,000 would be 10^8 stanzas. ejabberd's default configuration allows a user
// 10 sessions (max_user_sessions); an HTTP client naming a session per device needs more.

/**
 * Available sessions of one account: PUT /v1/presence making one more is 409 too-many-sessions.
 * Also the session rows an account keeps (the session_room trigger's number, its migration): a
 * new one removes the least recently seen of those gone (unavailable, no stream open).
 */
export const MAX_SESSIONS = 100;

export const sessionsDetail = `an account has at most ${MAX_SESSIONS} available sessions: make one unavailable (PUT /v1/presence {"type":"unavailable"}) or end it (DELETE /v1/sessions/{resource})`;
