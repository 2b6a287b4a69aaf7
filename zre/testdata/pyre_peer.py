"""A pyre node (zeromq-pyre, the Python port of zyre) as a test peer.

Run by zre's TestInteropPyre inside a network namespace, with the pyre of
the venv scripts/test makes (its python on Debian's python3-zmq). It meets
two of our nodes in turn by beacons on interface zre0:

  go-a: ENTER both ways, JOIN "lab", WHISPER and SHOUT both ways; pyre
        LEAVEs "lab", then go-a does; go-a stops and pyre must see its EXIT
        from its port-0 beacon.
  go-b: ENTER both ways (go-b whispers "hello pyre" once it saw pyre);
        then pyre stops, and go-b must see its EXIT.

It prints PYRE-... lines for the test and fails (exit 1) on a timeout, on
anything unexpected, and on any pyre warning: "messages lost", "isn't
ready", an unknown message type (GOODBYE, which pyre does not know).
"""
import logging
import sys
import time

import zmq
from pyre import Pyre
from pyre.pyre_event import PyreEvent

DEADLINE = time.time() + 120


class Watch(logging.Handler):
    """Keeps pyre's log: warnings fail the run; debug lines are checked."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []
        self.warnings = []

    def emit(self, record):
        msg = record.getMessage()
        self.lines.append(msg)
        if record.levelno >= logging.WARNING or "unknown" in msg:
            self.warnings.append(msg)


watch = Watch()
for name in ("pyre", "pyre.pyre_node", "pyre.zre_msg", "pyre.pyre_peer"):
    lg = logging.getLogger(name)
    lg.setLevel(logging.DEBUG)
    lg.addHandler(watch)


def fail(why):
    print("PYRE-FAIL " + why, flush=True)
    sys.stderr.write("pyre log:\n" + "\n".join(watch.lines[-200:]) + "\n")
    sys.exit(1)


def say(line):
    print("PYRE-" + line, flush=True)


node = Pyre("pyre-node")
node.set_header("X-LANG", "python")
node.set_interface("zre0")
node.start()
node.join("lab")
poller = zmq.Poller()
poller.register(node.socket(), zmq.POLLIN)


def next_event():
    while True:
        left = DEADLINE - time.time()
        if left <= 0:
            fail("timeout")
        if watch.warnings:
            fail("pyre warned: %r" % watch.warnings)
        if dict(poller.poll(min(left, 1.0) * 1000)):
            return PyreEvent(node)


def wait(pred, what):
    while True:
        e = next_event()
        if pred(e):
            return e


go_a = wait(lambda e: e.type == "ENTER" and e.peer_name == "go-a", "ENTER go-a")
if go_a.header("X-LANG") != "go":
    fail("go-a headers %r" % go_a.headers)
say("ENTER go-a")
wait(lambda e: e.type == "JOIN" and e.peer_uuid == go_a.peer_uuid and e.group == "lab", "JOIN go-a lab")
node.whisper(go_a.peer_uuid, b"from pyre")
node.shout("lab", b"pyre shout")
got_whisper = got_shout = False
while not (got_whisper and got_shout):
    e = next_event()
    if e.peer_uuid != go_a.peer_uuid:
        continue
    if e.type == "WHISPER":
        if e.msg != [b"from go", b"\x00\xff"]:
            fail("whisper %r" % e.msg)
        got_whisper = True
    elif e.type == "SHOUT":
        if e.group != "lab" or e.msg != [b"go shout"]:
            fail("shout %s %r" % (e.group, e.msg))
        got_shout = True
say("GOT go-a")
node.leave("lab")
wait(lambda e: e.type == "LEAVE" and e.peer_uuid == go_a.peer_uuid and e.group == "lab", "LEAVE go-a lab")
say("LEAVE go-a")
node.whisper(go_a.peer_uuid, b"seen leave")
wait(lambda e: e.type == "EXIT" and e.peer_uuid == go_a.peer_uuid, "EXIT go-a")
if not any("0 port beacon" in l for l in watch.lines):
    fail("EXIT of go-a not from its port-0 beacon")
say("EXIT go-a")

go_b = wait(lambda e: e.type == "ENTER" and e.peer_name == "go-b", "ENTER go-b")
say("ENTER go-b")
wait(lambda e: e.type == "WHISPER" and e.peer_uuid == go_b.peer_uuid and e.msg == [b"hello pyre"], "WHISPER go-b")
node.stop()
if watch.warnings:
    fail("pyre warned: %r" % watch.warnings)
say("OK")
