// XML namespaces of the protocols Balcony speaks, with the document that defines each.
export const NS = {
  receipts: "urn:xmpp:receipts", // XEP-0184
  chatStates: "http://jabber.org/protocol/chatstates", // XEP-0085
  sid: "urn:xmpp:sid:0", // XEP-0359
  discoInfo: "http://jabber.org/protocol/disco#info", // XEP-0030
  discoItems: "http://jabber.org/protocol/disco#items",
  ping: "urn:xmpp:ping", // XEP-0199
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas", // RFC 6120 §8.3
  muc: "http://jabber.org/protocol/muc", // XEP-0045
  mucUser: "http://jabber.org/protocol/muc#user",
  mucOwner: "http://jabber.org/protocol/muc#owner",
  xdata: "jabber:x:data", // XEP-0004
  delay: "urn:xmpp:delay", // XEP-0203
  conference: "jabber:x:conference", // XEP-0249
  markers: "urn:xmpp:chat-markers:0", // XEP-0333
  reply: "urn:xmpp:reply:0", // XEP-0461 (v0.3)
  fallback: "urn:xmpp:fallback:0", // XEP-0428
  oob: "jabber:x:oob", // XEP-0066
  sfs: "urn:xmpp:sfs:0", // XEP-0447
  fileMetadata: "urn:xmpp:file:metadata:0", // XEP-0446
  urlData: "http://jabber.org/protocol/url-data", // XEP-0103
  correct: "urn:xmpp:message-correct:0", // XEP-0308
  retract: "urn:xmpp:message-retract:1", // XEP-0424 (v0.4)
  retract0: "urn:xmpp:message-retract:0", // XEP-0424 before v0.4, inside XEP-0422 fastening
  fasten: "urn:xmpp:fasten:0", // XEP-0422
  reactions: "urn:xmpp:reactions:0", // XEP-0444
  hints: "urn:xmpp:hints", // XEP-0334
  occupantId: "urn:xmpp:occupant-id:0", // XEP-0421
} as const;
