#!/usr/bin/env python3
"""Optional end-to-end check of Janus with real WebRTC media (not stdlib-only).

Needs two PyPI packages:  pip install aiortc websockets
Run inside the benchmark namespace, with Janus started by janus.sh:

    scripts/bench/netns.sh exec python3 scripts/bench/janus_media_probe.py \
        [--publishers 2] [--seconds 8] [--dump FILE]

What it does (one WebSocket connection per role, each its own session):
  watcher     joins room 777 as a publisher that never publishes, to receive
              the room's notifications (a new feed, unpublished, leaving)
  publishers  (--publishers, default 2) each joins, publishes audio+video
              from aiortc (silence, and a generated 640x480 VP8 picture) and
              waits for "webrtcup"
  subscriber  joins as subscriber to the first feed, answers Janus's offer
              with "start", waits for "webrtcup", adds the other feeds with
              "subscribe" (each answered again with "start"), counts the
              frames it receives per track for --seconds
  then the first publisher sends "unpublish" (the subscriber answers the
  new offer), all publishers "leave", and everyone detaches.

Every message is printed ("->" sent, "<-" received, SDPs cut short); with
--dump FILE each one is also written whole, one JSON object a line.
Exit status 0 when the subscriber received audio and video through Janus.
"""

import argparse
import asyncio
import json
import random
import string
import sys
import time

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import VideoFrame
from websockets.asyncio.client import connect

T0 = time.monotonic()


def shorten(obj):
    if isinstance(obj, dict):
        return {k: (f"<{len(v)} bytes of SDP>" if k == "sdp" and isinstance(v, str) else shorten(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [shorten(v) for v in obj]
    return obj


class Janus:
    def __init__(self, name, ws, dump):
        self.name, self.ws, self.dump = name, ws, dump
        self.pending = {}          # transaction -> future of the final reply
        self.acks = {}             # transaction -> future of the ack
        self.events = asyncio.Queue()  # messages without a transaction, or late ones
        self.session = self.handle = None
        self.reader = asyncio.create_task(self._read())

    def _log(self, arrow, msg):
        print(f"{time.monotonic() - T0:6.2f} [{self.name}] {arrow} "
              f"{json.dumps(shorten(msg), separators=(',', ':'))}", flush=True)
        if self.dump:
            self.dump.write(json.dumps({"t": round(time.monotonic() - T0, 3), "who": self.name,
                                        "dir": "sent" if arrow == "->" else "received",
                                        "msg": msg}) + "\n")

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            self._log("<-", msg)
            txn, kind = msg.get("transaction"), msg.get("janus")
            if kind == "ack" and txn in self.acks:
                self.acks.pop(txn).set_result(msg)
            elif txn in self.pending:
                self.pending.pop(txn).set_result(msg)
            else:
                await self.events.put(msg)

    async def send(self, msg, want_ack=False):
        txn = "".join(random.choices(string.ascii_letters, k=12))
        msg["transaction"] = txn
        if self.session and "session_id" not in msg and msg["janus"] != "create":
            msg["session_id"] = self.session
        loop = asyncio.get_running_loop()
        final = None
        if msg["janus"] not in ("keepalive", "trickle"):
            final = self.pending[txn] = loop.create_future()
        ack = None
        if want_ack or final is None:
            ack = self.acks[txn] = loop.create_future()
        self._log("->", msg)
        await self.ws.send(json.dumps(msg))
        results = await asyncio.wait_for(
            asyncio.gather(*[f for f in (ack, final) if f is not None]), 10)
        return results[-1]

    async def setup(self):
        r = await self.send({"janus": "create"})
        self.session = r["data"]["id"]
        r = await self.send({"janus": "attach", "plugin": "janus.plugin.videoroom"})
        self.handle = r["data"]["id"]
        self.keepalive = asyncio.create_task(self._keepalive())

    async def _keepalive(self):
        while True:
            await asyncio.sleep(25)
            await self.send({"janus": "keepalive"})

    async def message(self, body, jsep=None, sync=False):
        msg = {"janus": "message", "handle_id": self.handle, "body": body}
        if jsep:
            msg["jsep"] = jsep
        return await self.send(msg, want_ack=not sync)

    async def wait_event(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        kept = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"[{self.name}] no {what} within {timeout}s")
                msg = await asyncio.wait_for(self.events.get(), left)
                if pred(msg):
                    return msg
                kept.append(msg)
        finally:
            for m in kept:
                self.events.put_nowait(m)

    async def close(self):
        self.keepalive.cancel()
        await self.send({"janus": "detach", "handle_id": self.handle})
        await self.send({"janus": "destroy"})
        await self.ws.close()


def data(msg):
    return msg.get("plugindata", {}).get("data", {})


class Picture(VideoStreamTrack):
    """640x480 frames with a moving bar, so VP8 has something to encode."""

    def __init__(self):
        super().__init__()
        self.n = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(640, 480, "yuv420p")
        x = (self.n * 8) % 600
        self.n += 1
        for i, plane in enumerate(frame.planes):
            w, h, stride = plane.width, plane.height, plane.line_size
            s = 1 if i == 0 else 2
            row = bytearray([60 if i == 0 else 128]) * stride
            row[x // s:(x + 40) // s] = bytes([200 if i == 0 else 90]) * ((x + 40) // s - x // s)
            plane.update(bytes(row) * h)
        frame.pts, frame.time_base = pts, time_base
        return frame


async def run(args):
    dump = open(args.dump, "w") if args.dump else None
    url, room = args.url, args.room

    async def open_janus(name):
        ws = await connect(url, subprotocols=["janus-protocol"], max_size=None)
        j = Janus(name, ws, dump)
        await j.setup()
        return j

    watcher = await open_janus("watcher")
    r = await watcher.message({"request": "create", "room": room, "publishers": 100,
                               "bitrate": 2500000}, sync=True)
    if data(r).get("error_code") not in (None, 427):
        raise SystemExit(f"create room failed: {data(r)}")
    await watcher.message({"request": "join", "ptype": "publisher", "room": room,
                           "display": "watcher"})

    pubs, pcs, feeds = [], [], []
    for i in range(args.publishers):
        pub = await open_janus(f"pub{i + 1}")
        r = await pub.message({"request": "join", "ptype": "publisher", "room": room,
                               "display": f"media-probe-{i + 1}"})
        feed = data(r)["id"]
        pc_pub = RTCPeerConnection()
        pc_pub.addTrack(AudioStreamTrack())
        pc_pub.addTrack(Picture())
        await pc_pub.setLocalDescription(await pc_pub.createOffer())  # gathers all candidates
        r = await pub.message({"request": "publish", "audio": True, "video": True},
                              jsep={"type": "offer", "sdp": pc_pub.localDescription.sdp})
        await pc_pub.setRemoteDescription(RTCSessionDescription(**r["jsep"]))
        await pub.wait_event(lambda m: m.get("janus") == "webrtcup", 15, "webrtcup (publisher)")
        await watcher.wait_event(
            lambda m: any(p.get("id") == feed for p in data(m).get("publishers", [])),
            10, "publishers notification (watcher)")
        pubs.append(pub)
        pcs.append(pc_pub)
        feeds.append(feed)

    # The subscriber joins with the first feed, then adds the others with
    # "subscribe"; each change brings an "updated" event with a new offer,
    # answered with "start" like the first one.
    sub = await open_janus("sub")
    r = await sub.message({"request": "join", "ptype": "subscriber", "room": room,
                           "streams": [{"feed": feeds[0]}]})
    pc_sub = RTCPeerConnection()
    got = {}

    @pc_sub.on("track")
    def on_track(track):
        key = f"{track.kind}#{len([k for k in got if k.startswith(track.kind)])}"
        got[key] = 0

        async def pull():
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                got[key] += 1
        asyncio.ensure_future(pull())

    async def answer(offer):
        await pc_sub.setRemoteDescription(RTCSessionDescription(**offer))
        await pc_sub.setLocalDescription(await pc_sub.createAnswer())
        await sub.message({"request": "start"},
                          jsep={"type": "answer", "sdp": pc_sub.localDescription.sdp})

    await answer(r["jsep"])
    await sub.wait_event(lambda m: m.get("janus") == "webrtcup", 15, "webrtcup (subscriber)")
    for feed in feeds[1:]:
        r = await sub.message({"request": "subscribe", "streams": [{"feed": feed}]})
        if "jsep" not in r:
            r = await sub.wait_event(lambda m: "jsep" in m, 10, "updated offer")
        await answer(r["jsep"])
    await asyncio.sleep(args.seconds)
    print(f"subscriber received, per track, in about {args.seconds}s: {got}", flush=True)

    # The first publisher unpublishes: the subscriber gets an "updated"
    # offer (its m-lines of that feed go inactive), which it answers.
    pub = pubs[0]
    await pub.message({"request": "unpublish"})
    r = await sub.wait_event(lambda m: "jsep" in m, 5, "updated offer after unpublish")
    await answer(r["jsep"])
    for p in pubs:
        await p.message({"request": "leave"})
    await asyncio.sleep(1.5)  # let hangup / unpublished / leaving events arrive
    for j in [sub] + pubs + [watcher]:
        await j.close()
    for pc in pcs + [pc_sub]:
        await pc.close()
    if dump:
        dump.close()
    ok = len(got) == 2 * len(feeds) and all(n > 0 for n in got.values())
    print("PASS: media flowed publisher -> Janus -> subscriber for every track" if ok
          else "FAIL: some track got no media")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="ws://127.0.0.1:8188")
    ap.add_argument("--room", type=int, default=777)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--publishers", type=int, default=2,
                    help="publishers to start; the subscriber takes all their feeds")
    ap.add_argument("--dump", help="write every message whole to this JSON-lines file")
    args = ap.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
