#!/usr/bin/env python3
"""Checks the Janus VideoRoom API sequence the benchmark's load generator uses.

Run it inside the benchmark namespace, with Janus started by janus.sh:

    scripts/bench/netns.sh exec python3 scripts/bench/janus_probe.py [options]

Python 3 standard library only (it carries a minimal WebSocket client).
Every frame sent and received is printed as one line ("-> " sent, "<- "
received) so the output is a transcript of the sequence:

  publisher   create, attach videoroom, create room 777, join as publisher,
              publish with an SDP offer (answer expected in "jsep"),
              trickle one candidate and end-of-candidates, keepalive
  subscriber  (own session and handle) join as subscriber to the publisher's
              feed, and "start" with an SDP answer to Janus's offer
  errors      a keepalive on an unknown session (core error 458) and a join
              to an unknown room (VideoRoom error_code 426)

The offers and answers are plausible SDPs with a host candidate on a UDP
socket of this script (default 10.77.0.1, i.e. veth0); the script counts the
STUN binding requests Janus sends there, which shows that Janus's ICE agent
reaches the peer over veth0. There is no DTLS or media, so "webrtcup" never
comes, and Janus refuses subscribers to a feed that is not up (error 428,
checked by default). For the full subscriber sequence pass --dummy-room to
subscribe to the dummy publisher of a room made with "dummy_publisher": true,
or --feed to subscribe to a real publisher of --room (e.g. a browser's).

Options:
  --url ws://127.0.0.1:8188   Janus WebSocket API
  --room 777                  room to create (an existing room is reused)
  --ip 10.77.0.1              address of this script's host candidate
  --no-protocol               connect without Sec-WebSocket-Protocol (shows the trap)
  --dummy-room N              also create room N with a dummy publisher and
                              subscribe to that publisher
  --feed ID                   subscribe to this feed of --room instead
  --quiet                     print only the summary
Exit status 0 when every step answered as expected.
"""

import argparse
import base64
import hashlib
import json
import os
import random
import select
import socket
import string
import struct
import sys
import time
import urllib.parse

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WebSocketClosed(Exception):
    pass


class WebSocket:
    """A minimal RFC 6455 client: text frames, ping/pong, close."""

    def __init__(self, url, protocol="janus-protocol", timeout=10.0):
        u = urllib.parse.urlparse(url)
        if u.scheme != "ws":
            raise ValueError("only ws:// URLs are supported")
        host, port = u.hostname, u.port or 80
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {u.path or '/'} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if protocol:
            lines.append(f"Sec-WebSocket-Protocol: {protocol}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise WebSocketClosed("connection closed during the handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        status, *hdrs = head.decode("latin-1").split("\r\n")
        self.status_line = status
        self.headers = {}
        for h in hdrs:
            k, _, v = h.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if " 101 " not in status + " ":
            raise WebSocketClosed(f"handshake refused: {status}")
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if self.headers.get("sec-websocket-accept") != want:
            raise WebSocketClosed("bad Sec-WebSocket-Accept")

    def _send_frame(self, opcode, payload):
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_text(self, text):
        self._send_frame(0x1, text.encode())

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError
            if not chunk:
                raise WebSocketClosed("connection closed by the server (no close frame)")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_text(self, timeout):
        """The next text message, or raises TimeoutError / WebSocketClosed."""
        deadline = time.monotonic() + timeout
        message = b""
        while True:
            b0, b1 = self._read(2, deadline)
            fin, opcode, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2, deadline))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8, deadline))[0]
            mask = self._read(4, deadline) if b1 & 0x80 else None
            payload = self._read(n, deadline)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise WebSocketClosed(f"close frame from the server, code {code}")
            message += payload
            if fin:
                return message.decode()

    def close(self):
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


def rand_str(n, alphabet=string.ascii_letters + string.digits):
    return "".join(random.choice(alphabet) for _ in range(n))


def shorten_sdp(obj):
    """A copy of a Janus message with any SDP cut to its first lines."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "sdp" and isinstance(v, str) and len(v) > 120:
                lines = v.split("\r\n")
                out[k] = "\\r\\n".join(lines[:4]) + f"\\r\\n...({len(lines)} lines, {len(v)} bytes)"
            else:
                out[k] = shorten_sdp(v)
        return out
    if isinstance(obj, list):
        return [shorten_sdp(v) for v in obj]
    return obj


class Janus:
    """One WebSocket connection to the Janus API, with transaction matching."""

    def __init__(self, url, name, quiet, protocol="janus-protocol"):
        self.ws = WebSocket(url, protocol=protocol)
        self.name = name
        self.quiet = quiet
        self.backlog = []  # received but not yet claimed
        self.unsolicited = []
        self.ack_after_event = 0  # times the event came before its ack

    def log(self, arrow, msg):
        if not self.quiet:
            print(f"[{self.name}] {arrow} {json.dumps(shorten_sdp(msg), separators=(',', ':'))}",
                  flush=True)

    def send(self, msg):
        msg.setdefault("transaction", rand_str(12))
        self.log("->", msg)
        self.ws.send_text(json.dumps(msg))
        return msg["transaction"]

    def _next(self, timeout):
        msg = json.loads(self.ws.recv_text(timeout))
        self.log("<-", msg)
        return msg

    def wait(self, txn, kinds, timeout=10.0):
        """Waits for a message of transaction txn whose "janus" is in kinds.
        Acks for txn are consumed (and returned in the list of acks seen)."""
        deadline = time.monotonic() + timeout
        acks = []
        while True:
            for i, m in enumerate(self.backlog):
                if m.get("transaction") == txn:
                    del self.backlog[i]
                    if m.get("janus") == "ack" and "ack" not in kinds:
                        acks.append(m)
                        break
                    if m.get("janus") in kinds or m.get("janus") == "error":
                        return m, acks
                    break
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {kinds} for transaction {txn}")
                m = self._next(left)
                if "transaction" in m:
                    self.backlog.append(m)
                else:
                    self.unsolicited.append(m)

    def drain(self, seconds):
        """Reads whatever comes for a while (unsolicited events)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                m = self._next(left)
            except TimeoutError:
                return
            (self.backlog if "transaction" in m else self.unsolicited).append(m)

    def request(self, msg, kinds=("success",), timeout=10.0):
        txn = self.send(msg)
        reply, _ = self.wait(txn, kinds, timeout)
        return reply

    def message(self, session, handle, body, jsep=None, timeout=10.0):
        """A plugin request: returns (ack-or-None, reply). Janus answers
        synchronous requests (create, list, ...) with "success" carrying
        plugindata and no ack; asynchronous ones (join, publish, start, ...)
        with an "ack" and an "event", in either order."""
        msg = {"janus": "message", "session_id": session, "handle_id": handle, "body": body}
        if jsep is not None:
            msg["jsep"] = jsep
        txn = self.send(msg)
        reply, acks = self.wait(txn, ("success", "event"), timeout)
        if reply.get("janus") == "event" and not acks:
            self.ack_after_event += 1
            ack, _ = self.wait(txn, ("ack",), 2.0)
            acks.append(ack)
        return (acks[0] if acks else None), reply


class UdpPeer:
    """A UDP socket standing in for the media side of a peer: it only counts
    the STUN binding requests Janus's ICE agent sends to it."""

    def __init__(self, ip):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.sock.setblocking(False)
        self.ip, self.port = self.sock.getsockname()
        self.stun_requests = 0
        self.sources = set()

    def poll(self):
        while True:
            r, _, _ = select.select([self.sock], [], [], 0)
            if not r:
                return
            data, src = self.sock.recvfrom(2048)
            if len(data) >= 20 and data[0:2] == b"\x00\x01" and data[4:8] == b"\x21\x12\xa4\x42":
                self.stun_requests += 1
                self.sources.add(src)


def fingerprint():
    return ":".join(f"{b:02X}" for b in hashlib.sha256(os.urandom(32)).digest())


def sdp_session_head():
    return [
        "v=0",
        f"o=- {random.randint(10**17, 10**18)} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS probe",
    ]


def media_common(mid, ufrag, pwd, fp, setup, cand):
    return [
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        cand,
        f"a=ice-ufrag:{ufrag}",
        f"a=ice-pwd:{pwd}",
        "a=ice-options:trickle",
        f"a=fingerprint:sha-256 {fp}",
        f"a=setup:{setup}",
        f"a=mid:{mid}",
    ]


def make_offer(peer):
    """A Chromium-like sendonly offer: Opus audio (mid 0) + VP8 video with RTX (mid 1)."""
    ufrag, pwd, fp = rand_str(4), rand_str(24), fingerprint()
    cand = f"a=candidate:1 1 udp 2122260223 {peer.ip} {peer.port} typ host generation 0"
    a_ssrc, v_ssrc, r_ssrc = (random.randint(1, 2**32 - 1) for _ in range(3))
    sdp = sdp_session_head()
    sdp += ["m=audio 9 UDP/TLS/RTP/SAVPF 111"]
    sdp += media_common("0", ufrag, pwd, fp, "actpass", cand)
    sdp += [
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendonly",
        "a=msid:probe audio0",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        f"a=ssrc:{a_ssrc} cname:probe",
        f"a=ssrc:{a_ssrc} msid:probe audio0",
    ]
    sdp += ["m=video 9 UDP/TLS/RTP/SAVPF 96 97"]
    sdp += media_common("1", ufrag, pwd, fp, "actpass", cand)
    sdp += [
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendonly",
        "a=msid:probe video0",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 goog-remb",
        "a=rtcp-fb:96 transport-cc",
        "a=rtcp-fb:96 ccm fir",
        "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 nack pli",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        f"a=ssrc-group:FID {v_ssrc} {r_ssrc}",
        f"a=ssrc:{v_ssrc} cname:probe",
        f"a=ssrc:{v_ssrc} msid:probe video0",
        f"a=ssrc:{r_ssrc} cname:probe",
        f"a=ssrc:{r_ssrc} msid:probe video0",
    ]
    return "\r\n".join(sdp) + "\r\n"


def make_answer(offer_sdp, peer):
    """A recvonly answer to Janus's subscriber offer: accepts each m-line with
    its first payload type (and the RTX type tied to it), rejects
    application (data channel) m-lines."""
    ufrag, pwd, fp = rand_str(4), rand_str(24), fingerprint()
    cand = f"a=candidate:1 1 udp 2122260223 {peer.ip} {peer.port} typ host generation 0"
    sections, cur = [], None
    for line in offer_sdp.split("\r\n"):
        if line.startswith("m="):
            cur = [line]
            sections.append(cur)
        elif cur is not None and line:
            cur.append(line)
    mids = []
    body = []
    for sec in sections:
        kind, _port, proto, *pts = sec[0][2:].split()
        mid = next((l[6:] for l in sec if l.startswith("a=mid:")), str(len(mids)))
        if kind not in ("audio", "video") or _port == "0" or not pts:
            body += [f"m={kind} 0 {proto} {' '.join(pts) or '0'}", "c=IN IP4 0.0.0.0", f"a=mid:{mid}"]
            continue
        mids.append(mid)
        pt = pts[0]
        keep = [pt] + [p for p in pts[1:]
                       if f"a=fmtp:{p} apt={pt}" in sec]
        body += [f"m={kind} 9 {proto} {' '.join(keep)}"]
        body += media_common(mid, ufrag, pwd, fp, "active", cand)
        body += [l for l in sec if l.startswith("a=extmap:")]
        body += ["a=recvonly", "a=rtcp-mux"]
        if kind == "video":
            body += ["a=rtcp-rsize"]
        for p in keep:
            body += [l for l in sec
                     if l.startswith((f"a=rtpmap:{p} ", f"a=fmtp:{p} ", f"a=rtcp-fb:{p} "))]
    head = sdp_session_head()
    head[4] = "a=group:BUNDLE " + " ".join(mids)
    return "\r\n".join(head + body) + "\r\n"


def plugin_data(event):
    return event.get("plugindata", {}).get("data", {})


class Checker:
    def __init__(self):
        self.ok = True
        self.lines = []

    def check(self, cond, what):
        self.lines.append(("PASS " if cond else "FAIL ") + what)
        self.ok &= bool(cond)
        return cond


def new_handle(j, chk, who):
    reply = j.request({"janus": "create"})
    chk.check(reply.get("janus") == "success", f"{who}: create -> success, data.id = session id")
    session = reply["data"]["id"]
    reply = j.request({"janus": "attach", "plugin": "janus.plugin.videoroom", "session_id": session})
    chk.check(reply.get("janus") == "success", f"{who}: attach -> success, data.id = handle id")
    return session, reply["data"]["id"]


def create_room(j, chk, session, handle, body, who):
    _, ev = j.message(session, handle, body)
    data = plugin_data(ev)
    if data.get("error_code") == 427:  # room already exists
        chk.check(True, f"{who}: create room {body['room']} -> exists already (error 427), reused")
    else:
        chk.check(data.get("videoroom") == "created",
                  f"{who}: create room {body['room']} -> success, videoroom=created")


def subscribe(url, args, chk, room, feed, peer):
    j = Janus(url, "sub", args.quiet)
    session, handle = new_handle(j, chk, "subscriber")
    ack, ev = j.message(session, handle, {
        "request": "join", "ptype": "subscriber", "room": room,
        "streams": [{"feed": feed}]})
    data = plugin_data(ev)
    offer = ev.get("jsep", {})
    chk.check(ack is not None and ack.get("janus") == "ack", "subscriber: join -> ack (any order)")
    if not chk.check(data.get("videoroom") == "attached" and offer.get("type") == "offer",
                     f"subscriber: join feed {feed} -> event attached, offer in jsep"):
        return j, session
    answer = make_answer(offer["sdp"], peer)
    ack, ev = j.message(session, handle, {"request": "start"},
                        jsep={"type": "answer", "sdp": answer})
    chk.check(plugin_data(ev).get("started") == "ok", "subscriber: start with answer -> started: ok")
    ack, ev = j.message(session, handle, {"request": "pause"})
    chk.check(plugin_data(ev).get("paused") == "ok", "subscriber: pause -> paused: ok")
    return j, session


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="ws://127.0.0.1:8188")
    ap.add_argument("--room", type=int, default=777)
    ap.add_argument("--ip", default="10.77.0.1")
    ap.add_argument("--no-protocol", action="store_true")
    ap.add_argument("--dummy-room", type=int)
    ap.add_argument("--feed", type=int)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    chk = Checker()

    if args.no_protocol:
        # Janus 1.1.2 drops such a connection without any HTTP answer.
        try:
            ws = WebSocket(args.url, protocol=None)
        except WebSocketClosed as e:
            print(f"without Sec-WebSocket-Protocol: {e}")
            return 0
        print(f"without Sec-WebSocket-Protocol the handshake gave: {ws.status_line}")
        ws.send_text(json.dumps({"janus": "create", "transaction": "noproto"}))
        try:
            print("reply:", ws.recv_text(5))
        except (TimeoutError, WebSocketClosed) as e:
            print("no reply:", type(e).__name__, e)
        return 0

    j = Janus(args.url, "pub", args.quiet)
    chk.check(j.ws.headers.get("sec-websocket-protocol") == "janus-protocol",
              "handshake: 101 with Sec-WebSocket-Protocol: janus-protocol")
    session, handle = new_handle(j, chk, "publisher")
    create_room(j, chk, session, handle,
                {"request": "create", "room": args.room, "publishers": 100, "bitrate": 2500000},
                "publisher")

    ack, ev = j.message(session, handle, {
        "request": "join", "ptype": "publisher", "room": args.room, "display": "probe"})
    data = plugin_data(ev)
    chk.check(data.get("videoroom") == "joined" and "id" in data,
              "publisher: join -> event joined, plugindata.data.id = feed id")
    feed = data.get("id")

    peer = UdpPeer(args.ip)
    ack, ev = j.message(session, handle, {"request": "publish", "audio": True, "video": True},
                        jsep={"type": "offer", "sdp": make_offer(peer)})
    chk.check(plugin_data(ev).get("configured") == "ok"
              and ev.get("jsep", {}).get("type") == "answer",
              "publisher: publish with offer -> configured: ok, answer in jsep")
    answer = ev.get("jsep", {}).get("sdp", "")
    chk.check("a=candidate:" in answer and f" {args.ip} " in answer,
              f"publisher: answer carries Janus's host candidate on {args.ip}")

    cand = {"candidate": f"candidate:2 1 udp 2122260222 {peer.ip} {peer.port + 1} typ host generation 0",
            "sdpMid": "0", "sdpMLineIndex": 0}
    reply = j.request({"janus": "trickle", "session_id": session, "handle_id": handle,
                       "candidate": cand}, kinds=("ack",))
    chk.check(reply.get("janus") == "ack", "publisher: trickle candidate -> ack")
    reply = j.request({"janus": "trickle", "session_id": session, "handle_id": handle,
                       "candidate": {"completed": True}}, kinds=("ack",))
    chk.check(reply.get("janus") == "ack", "publisher: trickle completed -> ack")
    reply = j.request({"janus": "keepalive", "session_id": session}, kinds=("ack",))
    chk.check(reply.get("janus") == "ack", "publisher: keepalive -> ack")

    # Two error shapes: the core's (bad session) and the plugin's (bad room).
    reply = j.request({"janus": "keepalive", "session_id": 1}, kinds=("ack",))
    chk.check(reply.get("janus") == "error" and reply.get("error", {}).get("code") == 458,
              "error: keepalive on unknown session -> janus=error, error.code 458")
    s2, h2 = new_handle(j, chk, "second handle")
    _, ev = j.message(s2, h2, {"request": "join", "ptype": "publisher", "room": 999999})
    chk.check(plugin_data(ev).get("error_code") == 426,
              "error: join unknown room -> event with plugindata.data.error_code 426")
    j.request({"janus": "destroy", "session_id": s2})

    # Janus starts its connectivity checks toward our host candidate.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and peer.stun_requests < 2:
        j.drain(0.2)
        peer.poll()
    chk.check(peer.stun_requests > 0,
              f"publisher: Janus sent {peer.stun_requests} STUN binding requests to "
              f"{peer.ip}:{peer.port} from {sorted(peer.sources)}")

    sub_j = None
    if args.dummy_room is not None:
        create_room(j, chk, session, handle,
                    {"request": "create", "room": args.dummy_room, "publishers": 100,
                     "bitrate": 2500000, "dummy_publisher": True},
                    "publisher")
        _, ev = j.message(session, handle, {"request": "listparticipants", "room": args.dummy_room})
        parts = plugin_data(ev).get("participants", [])
        dummy = next((p["id"] for p in parts if p.get("dummy")), parts[0]["id"] if parts else None)
        chk.check(dummy is not None, f"room {args.dummy_room}: listparticipants shows the dummy publisher")
        if dummy is not None:
            sub_j, _ = subscribe(args.url, args, chk, args.dummy_room, dummy, UdpPeer(args.ip))
    elif args.feed is not None:
        sub_j, _ = subscribe(args.url, args, chk, args.room, args.feed, UdpPeer(args.ip))
    else:
        sub_j = Janus(args.url, "sub", args.quiet)
        s2, h2 = new_handle(sub_j, chk, "subscriber")
        _, ev = sub_j.message(s2, h2, {"request": "join", "ptype": "subscriber", "room": args.room,
                                       "streams": [{"feed": feed}]})
        # Our feed never comes up (no DTLS), and Janus refuses to subscribe
        # to a feed whose PeerConnection is not up.
        chk.check(plugin_data(ev).get("error_code") == 428,
                  f"subscriber: join to feed {feed}, not up -> error_code 428 (expected)")

    j.drain(1.0)
    _, ev = j.message(session, handle, {"request": "leave"})
    chk.check(plugin_data(ev).get("leaving") == "ok", "publisher: leave -> leaving: ok")
    reply = j.request({"janus": "detach", "session_id": session, "handle_id": handle})
    chk.check(reply.get("janus") == "success", "publisher: detach -> success")
    reply = j.request({"janus": "destroy", "session_id": session})
    chk.check(reply.get("janus") == "success", "publisher: destroy -> success")
    j.drain(0.5)
    j.ws.close()
    if sub_j is not None:
        sub_j.ws.close()

    print("unsolicited (no transaction) seen:",
          sorted({m.get("janus") for m in j.unsolicited + (sub_j.unsolicited if sub_j else [])}))
    print("events that came before their ack:",
          j.ack_after_event + (sub_j.ack_after_event if sub_j else 0))
    print("\n".join(chk.lines))
    print("ALL PASS" if chk.ok else "SOME FAILED")
    return 0 if chk.ok else 1


if __name__ == "__main__":
    sys.exit(main())
