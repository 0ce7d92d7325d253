#!/usr/bin/python3
"""An independent Socket.IO peer for msglab's interop tests, on Debian's
python3-socketio 5.7 / python3-engineio 4.3 (run with /usr/bin/python3).

  sio_peer.py client --url http://127.0.0.1:PORT [--transports default|polling]
      A python-socketio Client: calls "sum", "echo" and "ask_back" and checks
      the acks (several arguments each), answers the server's "question"
      call with two values, waits for the server's "notice" emit after
      "please_call", then disconnects. Prints "PASS" and exits 0, or prints
      one "FAIL: ..." line per difference and exits 1.

  sio_peer.py server [--lifetime SECONDS]
      A python-socketio AsyncServer on aiohttp at 127.0.0.1 and a free port;
      prints "listening on 127.0.0.1:PORT". Handlers return tuples
      (acks of several arguments); "ask_back" and "please_call" call the
      client back. Prints a line per connect, event, answer and disconnect.
"""

import argparse
import asyncio
import json
import sys
import threading

import socketio

failures = []


def check(what, expected, got):
    if expected != got:
        failures.append(f"{what}: expected {expected!r}, got {got!r}")
        print(f"FAIL: {what}: expected {expected!r}, got {got!r}", flush=True)
    else:
        print(f"ok: {what}", flush=True)


def run_client(args):
    sio = socketio.Client()
    notice = threading.Event()
    questions = []

    @sio.on("question")
    def question(*qargs):
        questions.append(list(qargs))
        return True, {"x": qargs[0]}  # an ack with two arguments

    @sio.on("notice")
    def on_notice(*nargs):
        check("notice arguments", ["hello", 2], list(nargs))
        notice.set()

    transports = None if args.transports == "default" else [args.transports]
    sio.connect(args.url, transports=transports, wait_timeout=10)
    print(f"connected sid={sio.sid} transport={sio.transport()}", flush=True)
    check("transport", "polling" if args.transports == "polling" else "websocket", sio.transport())

    # A tuple is several arguments; an ack of several arguments is a tuple.
    check("sum ack", (5, "sum", [2, 3]), sio.call("sum", (2, 3), timeout=10))
    odd = ("caf\u00e9 \U0001f512", None, 1.5, {"k": [1, 2]}, -7, True)
    check("echo ack", odd, sio.call("echo", odd, timeout=10))
    check("ask_back ack (the server relays this client's answer)", (True, {"x": 41}),
          sio.call("ask_back", 41, timeout=10))
    check("question arguments", [[41]], questions)
    check("please_call ack", True, sio.call("please_call", timeout=10))
    check("notice arrived", True, notice.wait(10))
    check("question arguments after please_call", [[41], ["q"]], questions)
    sio.disconnect()
    if failures:
        return 1
    print("PASS", flush=True)
    return 0


def run_server(args):
    from aiohttp import web

    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)

    def say(line):
        print(line, flush=True)

    @sio.event
    async def connect(sid, environ, auth=None):
        say(f"connect {sid} auth={json.dumps(auth)}")

    @sio.event
    async def disconnect(sid):
        say(f"disconnect {sid}")

    @sio.event
    async def sum(sid, a, b):
        say(f"event sum {json.dumps([a, b])}")
        return a + b, "sum", [a, b]

    @sio.event
    async def echo(sid, *eargs):
        say(f"event echo {json.dumps(list(eargs))}")
        return tuple(eargs)

    @sio.event
    async def ask_back(sid, n):
        r = await sio.call("question", n, to=sid, timeout=10)
        say(f"answer {json.dumps(list(r) if isinstance(r, tuple) else r)}")
        return r

    @sio.event
    async def please_call(sid):
        await sio.emit("notice", ("hello", 2), to=sid)
        r = await sio.call("question", "q", to=sid, timeout=10)
        say(f"answer {json.dumps(list(r) if isinstance(r, tuple) else r)}")
        return True

    async def main():
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        say(f"listening on 127.0.0.1:{port}")
        await asyncio.sleep(args.lifetime)
        await runner.cleanup()

    asyncio.run(main())
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("client")
    c.add_argument("--url", required=True)
    c.add_argument("--transports", choices=["default", "polling"], default="default")
    s = sub.add_parser("server")
    s.add_argument("--lifetime", type=float, default=120)
    args = p.parse_args()
    try:
        return run_client(args) if args.mode == "client" else run_server(args)
    except Exception as e:  # a failure to connect or a timeout, named
        print(f"FAIL: {type(e).__name__}: {e}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
