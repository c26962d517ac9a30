// The ids Balcony makes (messages, and with them stanza and origin ids; webhook endpoints) are
// UUIDs (RFC 9562), from crypto.randomUUID(). Any other string names nothing of ours.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (id: string): boolean => UUID.test(id);
