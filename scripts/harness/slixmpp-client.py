#!/usr/bin/python3
"""A line-oriented JSON driver around slixmpp: an independent XMPP client for interop tests.

Run with Debian's interpreter and package (python3-slixmpp 1.8.3):

    /usr/bin/python3 scripts/harness/slixmpp-client.py '{"jid": "juliet@localhost/slix",
        "password": "pw", "host": "127.0.0.1", "port": 5222}'

It logs in over plaintext TCP with SASL PLAIN (as scripts/harness/xmpp-user.ts does), sends its
initial presence and prints {"type": "ready", "jid": <bound full JID>} once the server echoed it.

stdout: one JSON object per line.
- {"type": "message", ...} for every message stanza received, with what slixmpp's plugins parsed
  (see describe()) and the stanza's XML (for assertion messages).
- {"type": "done", "ref": <the command's ref>, "op", "id": <stanza id sent>, "xml"} per command,
  once the stanza is handed to slixmpp's send queue (which writes in order).
- {"type": "error", "ref"?, "error"} when a command fails; {"type": "fatal", "error"} and exit 1
  when the session cannot start or is lost.

stdin: one JSON command per line, each with a "ref" the answer repeats, and "to" (a JID):
- {"op": "send", "body", "markable"?: bool, "oob"?: {"url", "desc"?}}  (XEP-0333, XEP-0066)
- {"op": "correct", "id", "body"}                 XEP-0308 (stanza plugin 'replace')
- {"op": "react", "id", "emojis": [..]}           XEP-0444 send_reactions()
- {"op": "reply", "id", "author", "body"}         XEP-0461 send_reply() (author: the quoted full JID)
- {"op": "marker", "id", "marker"}                XEP-0333 send_marker()
- {"op": "retract", "id"}                         XEP-0424 send_retraction() (1.8.3: the v0 wire form)
- {"op": "retract1", "id"}                        XEP-0424 v0.4 (urn:xmpp:message-retract:1) built by
                                                  hand: slixmpp 1.8.3 has no plugin for it
- {"op": "stop"}                                  disconnects and exits 0 (so does EOF on stdin)
"""

import asyncio
import json
import logging
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

NS_FALLBACK = "urn:xmpp:fallback:0"  # XEP-0428 (slixmpp's xep_0428 element has no 'for' nor ranges)
NS_RETRACT1 = "urn:xmpp:message-retract:1"  # XEP-0424 v0.4; slixmpp 1.8.3 speaks :0 only
NS_OOB = "jabber:x:oob"
# The plugin events this driver reports per stanza (what an application built on slixmpp reacts to).
PLUGIN_EVENTS = [
    "message_correction",  # xep_0308
    "reactions",  # xep_0444
    "message_reply",  # xep_0461
    "message_retract",  # xep_0424 (urn:xmpp:message-retract:0 inside XEP-0422 <apply-to/>)
    "marker_received",  # xep_0333
    "marker_displayed",
    "marker_acknowledged",
]
PLUGINS = [
    "xep_0030",
    "xep_0066",
    "xep_0308",
    "xep_0333",
    "xep_0334",
    "xep_0359",
    "xep_0422",
    "xep_0424",
    "xep_0428",
    "xep_0444",
    "xep_0461",
]


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def plugin(stanza, name):
    """The stanza plugin `name` when the element is in the stanza, else None (never creates it)."""
    return stanza.get_plugin(name, check=True)


def describe(msg, events):
    """What slixmpp's plugins parsed of a received message (None where the element is absent)."""
    replace = plugin(msg, "replace")
    reactions = plugin(msg, "reactions")
    reply = plugin(msg, "reply")
    feature_fallback = plugin(msg, "feature_fallback")
    apply_to = plugin(msg, "apply_to")
    retract0 = plugin(apply_to, "retract") if apply_to is not None else None
    oob = plugin(msg, "oob")
    origin = plugin(msg, "origin_id")
    markers = {m: plugin(msg, m)["id"] for m in ("received", "displayed", "acknowledged") if plugin(msg, m) is not None}
    # Raw XML, where slixmpp 1.8.3 has no plugin (or the plugin does not expose the field):
    # XEP-0428 fallbacks with their 'for' and body ranges, XEP-0424 v0.4 retract, every OOB <x/>.
    fallbacks = [
        {
            "for": f.get("for"),
            "bodies": [{"start": b.get("start"), "end": b.get("end")} for b in f.findall("{%s}body" % NS_FALLBACK)],
        }
        for f in msg.xml.findall("{%s}fallback" % NS_FALLBACK)
    ]
    retract1 = msg.xml.find("{%s}retract" % NS_RETRACT1)
    return {
        "type": "message",
        "id": msg["id"] or None,
        "from": str(msg["from"]),
        "to": str(msg["to"]),
        "mtype": msg["type"],
        "body": msg["body"] if msg.xml.find("{jabber:client}body") is not None else None,
        "events": events,
        # xep_0359
        "originId": origin["id"] if origin is not None else None,
        # xep_0308
        "replace": replace["id"] if replace is not None else None,
        # xep_0444: the values in document order, and the plugin's own set
        "reactions": {
            "id": reactions["id"],
            "values": [r["value"] for r in reactions],
            "set": sorted(reactions.get_values(all_chars=True)),
        }
        if reactions is not None
        else None,
        # xep_0461, and its fallback helper (urn:xmpp:feature-fallback:0 in 1.8.3)
        "reply": {"id": reply["id"], "to": reply["to"]} if reply is not None else None,
        "featureFallbackStripped": feature_fallback.get_stripped_body() if feature_fallback is not None else None,
        # xep_0428: the plugin says "this body is a fallback"
        "fallback": plugin(msg, "fallback") is not None,
        "fallbacks": fallbacks,
        # xep_0424 (v0 with xep_0422 fastening)
        "retract": {"id": apply_to["id"]} if retract0 is not None else None,
        "retract1": {"id": retract1.get("id")} if retract1 is not None else None,
        # xep_0066: the plugin maps the first <x/>
        "oob": {"url": oob["url"], "desc": oob["desc"] or None} if oob is not None else None,
        "oobCount": len(msg.xml.findall("{%s}x" % NS_OOB)),
        # xep_0333
        "markable": plugin(msg, "markable") is not None,
        "markers": markers,
        # xep_0334
        "store": plugin(msg, "store") is not None,
        "xml": str(msg),
    }


class Driver(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.use_origin_id = True  # XEP-0359 origin-id = the stanza id, as modern clients send
        self["feature_mechanisms"].use_mech = "PLAIN"
        self["feature_mechanisms"].unencrypted_plain = True
        for p in PLUGINS:
            self.register_plugin(p)
        self.done = asyncio.get_event_loop().create_future()
        self.last_made = None
        self.pending = {}  # id(stanza) -> [plugin events]
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("failed_auth", lambda _: self.finish("authentication failed"))
        self.add_event_handler("disconnected", lambda _: self.finish("disconnected"))
        self.add_event_handler("connection_failed", lambda e: self.finish(f"connection failed: {e}"))
        for name in PLUGIN_EVENTS:
            self.add_event_handler(name, self.recorder(name))
        # Every message (any type, errors too) as one line, after the plugins' events for it ran:
        # slixmpp dispatches a stanza to all matching handlers synchronously, so call_soon is after.
        self.register_handler(Callback("driver: every message", StanzaPath("message"), self.on_message))

    def make_message(self, *args, **kwargs):
        # The plugins' send_* helpers build their stanza here: keep it, to answer with its id.
        self.last_made = super().make_message(*args, **kwargs)
        return self.last_made

    def recorder(self, name):
        def record(msg):
            self.pending.setdefault(id(msg), []).append(name)

        return record

    def on_message(self, msg):
        self.pending.setdefault(id(msg), [])
        self.loop.call_soon(self.flush, msg)

    def flush(self, msg):
        events = self.pending.pop(id(msg), [])
        try:
            emit(describe(msg, events))
        except Exception as e:  # a driver bug must show, not hang the test
            emit({"type": "error", "error": f"describe: {e!r}", "xml": str(msg)})

    def finish(self, why):
        if not self.done.done():
            self.done.set_result(why)

    async def on_session_start(self, _):
        echoed = asyncio.get_event_loop().create_future()

        def on_presence(pres):
            if pres["from"] == self.boundjid and pres["type"] == "available" and not echoed.done():
                echoed.set_result(True)

        self.add_event_handler("presence", on_presence)
        self.send_presence()
        try:
            await asyncio.wait_for(echoed, 10)
        except asyncio.TimeoutError:
            self.finish("no echo of the initial presence")
            return
        self.del_event_handler("presence", on_presence)
        emit({"type": "ready", "jid": str(self.boundjid)})
        asyncio.ensure_future(self.read_commands())

    async def read_commands(self):
        reader = asyncio.StreamReader()
        await self.loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                break
            try:
                cmd = json.loads(line)
            except ValueError as e:
                emit({"type": "error", "error": f"bad command line: {e}"})
                continue
            if cmd.get("op") == "stop":
                break
            try:
                msg = self.command(cmd)
                emit({"type": "done", "ref": cmd.get("ref"), "op": cmd["op"], "id": msg["id"] or None, "xml": str(msg)})
            except Exception as e:
                emit({"type": "error", "ref": cmd.get("ref"), "error": repr(e)})
        self.disconnect()
        self.finish("stopped")

    def command(self, cmd):
        op, to = cmd["op"], slixmpp.JID(cmd["to"])
        self.last_made = None
        if op == "send":
            msg = self.make_message(mto=to, mbody=cmd["body"], mtype="chat")
            if cmd.get("markable"):
                msg.enable("markable")
            if cmd.get("oob"):
                msg["oob"]["url"] = cmd["oob"]["url"]
                if cmd["oob"].get("desc"):
                    msg["oob"]["desc"] = cmd["oob"]["desc"]
            msg.send()
            return msg
        if op == "correct":
            # xep_0308 1.8.3 has no sending helper: its stanza plugin on a new message.
            msg = self.make_message(mto=to, mbody=cmd["body"], mtype="chat")
            msg["replace"]["id"] = cmd["id"]
            msg.send()
            return msg
        if op == "react":
            self["xep_0444"].send_reactions(to, cmd["id"], cmd["emojis"])
        elif op == "reply":
            self["xep_0461"].send_reply(slixmpp.JID(cmd["author"]), cmd["id"], mto=to, mbody=cmd["body"], mtype="chat")
        elif op == "marker":
            self["xep_0333"].send_marker(to, cmd["id"], cmd["marker"])
        elif op == "retract":
            self["xep_0424"].send_retraction(to, cmd["id"])
        elif op == "retract1":
            # No plugin for XEP-0424 v0.4 in 1.8.3: the <retract/> element by hand, the rest with
            # the plugins (xep_0428 fallback, xep_0334 store), as send_retraction() does for v0.
            msg = self.make_message(mto=to, mbody=cmd.get("fallback") or "This person attempted to retract a previous message, but it's unsupported by your client.", mtype="chat")
            msg.enable("fallback")
            msg["fallback"].xml.set("for", NS_RETRACT1)
            ET.SubElement(msg.xml, "{%s}retract" % NS_RETRACT1, {"id": cmd["id"]})
            msg.enable("store")
            msg.send()
            return msg
        else:
            raise ValueError(f"unknown op {op!r}")
        if self.last_made is None:
            raise RuntimeError(f"{op}: the plugin built no message")
        return self.last_made


def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    cfg = json.loads(sys.argv[1])
    xmpp = Driver(cfg["jid"], cfg["password"])
    xmpp.connect((cfg["host"], int(cfg["port"])), use_ssl=False, force_starttls=False, disable_starttls=True)
    why = xmpp.loop.run_until_complete(xmpp.done)
    if why != "stopped":
        emit({"type": "fatal", "error": why})
        sys.exit(1)


if __name__ == "__main__":
    main()
