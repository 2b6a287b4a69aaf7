# A libzmq peer for zmtp's interop tests, run with /usr/bin/python3
# (Debian's python3-zmq). Usage:
#   libzmq_peer.py dealer ENDPOINT IDENTITY HEARTBEAT_IVL_MS IDLE_MS
#   libzmq_peer.py router IDENTITY_EXPECTED HEARTBEAT_IVL_MS IDLE_MS
# It prints progress lines on stdout; the last is "ok disconnects=N".
import sys
import time
import zmq
from zmq.utils.monitor import recv_monitor_message

def fail(msg):
    print("fail " + msg, flush=True)
    sys.exit(1)

def count_disconnects(mon):
    n = 0
    while mon.poll(0):
        ev = recv_monitor_message(mon)
        if ev["event"] in (zmq.EVENT_DISCONNECTED, zmq.EVENT_CLOSED):
            n += 1
    return n

ctx = zmq.Context()
role = sys.argv[1]
if role == "dealer":
    endpoint, ident, ivl, idle = sys.argv[2], sys.argv[3].encode(), int(sys.argv[4]), int(sys.argv[5])
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.IDENTITY, ident)
    if ivl:
        s.setsockopt(zmq.HEARTBEAT_IVL, ivl)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * ivl)
    s.setsockopt(zmq.LINGER, 1000)
    s.setsockopt(zmq.RCVTIMEO, 20000)
    mon = s.get_monitor_socket()
    s.connect(endpoint)
    s.send_multipart([b"hello", b"", b"multi"])
    reply = s.recv_multipart()
    if reply != [b"reply", b"x" * 1000]:
        fail("reply %r" % reply[:1])
    print("got reply", flush=True)
    time.sleep(idle / 1000.0)
    s.send_multipart([b"after-idle"])
    bye = s.recv_multipart()
    if bye != [b"bye"]:
        fail("bye %r" % bye)
    print("ok disconnects=%d" % count_disconnects(mon), flush=True)
elif role == "router":
    expect, ivl, idle = sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4])
    s = ctx.socket(zmq.ROUTER)
    if ivl:
        s.setsockopt(zmq.HEARTBEAT_IVL, ivl)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * ivl)
    s.setsockopt(zmq.LINGER, 1000)
    s.setsockopt(zmq.RCVTIMEO, 20000)
    mon = s.get_monitor_socket()
    port = s.bind_to_random_port("tcp://127.0.0.1")
    print("endpoint 127.0.0.1:%d" % port, flush=True)
    msg = s.recv_multipart()
    if msg[0] != expect:
        fail("identity %r, want %r" % (msg[0], expect))
    if msg[1:] != [b"hello", b"", b"multi"]:
        fail("frames %r" % msg[1:])
    s.send_multipart([msg[0], b"reply", b"x" * 1000])
    time.sleep(idle / 1000.0)
    print("idle-done", flush=True)
    msg = s.recv_multipart()
    if msg[1:] != [b"after-idle"]:
        fail("after idle %r" % msg[1:])
    s.send_multipart([msg[0], b"bye"])
    time.sleep(0.2)
    print("ok disconnects=%d" % count_disconnects(mon), flush=True)
else:
    fail("unknown role " + role)
