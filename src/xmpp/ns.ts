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
} as const;
