"""An independent CSMP client for msglab's tests: Python's urllib for the
handshake and the `websockets` library (Debian's python3-websockets, which
offers permessage-deflate by default) for the chat socket.

Usage: ws_peer.py HOST:PORT USER PEER TEXT
Claims USER, joins room_<a>_<b> of USER and PEER, prints "ready", waits for a
chat message from PEER, answers it with TEXT, waits for the server's relay
of its own message, and prints each step. Exits 1 on any deviation.
"""
import asyncio
import json
import sys
import urllib.request

import websockets


def fail(why):
    print("FAIL", why, flush=True)
    sys.exit(1)


async def main():
    target, user, peer, text = sys.argv[1:5]
    req = urllib.request.Request(
        f"http://{target}/handshake/",
        data=json.dumps({"client_id": user}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        hs = json.loads(r.read())
    sid = hs["session_id"]
    if hs["client_id"] != user or hs["expires_in"] != 1800:
        fail(f"handshake answer {hs}")
    room = "room_" + "_".join(sorted([user, peer]))
    url = f"ws://{target}/ws/chat?session_id={sid}&room_id={room}"
    async with websockets.connect(url, open_timeout=10) as ws:
        ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        print("extensions", ext, flush=True)
        print("ready", flush=True)
        got = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if got.get("type") != "chat" or got.get("from") != peer or got.get("room_id") != room:
            fail(f"unexpected {got}")
        print("received", got["from"], got["message"], flush=True)
        await ws.send(json.dumps({"type": "chat", "message": text, "timestamp": "2026-01-26T17:05:30.000Z"}))
        echo = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if echo.get("from") != user or echo.get("message") != text:
            fail(f"unexpected relay {echo}")
        print("relayed", echo["message"], echo["timestamp"], flush=True)


asyncio.run(main())
