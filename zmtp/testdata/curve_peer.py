# A libzmq CURVE peer for zmtp's CURVE interop tests (curve_interop_test.go),
# run with /usr/bin/python3 (Debian's python3-zmq, libzmq 4.3.4). Traffic
# goes to 127.0.0.1 only. Keys are made here with zmq.curve_keypair() and
# printed in Z85.
#
#   curve_peer.py router MODE HEARTBEAT_IVL_MS IDLE_MS
#       CURVE server ROUTER on 127.0.0.1. Prints "server-key Z85" and
#       "endpoint HOST:PORT". A ZAP handler accepts every client and prints
#       "zap-key Z85" for each client key it sees.
#   curve_peer.py dealer MODE ENDPOINT SERVER_KEY HEARTBEAT_IVL_MS IDLE_MS
#       CURVE client DEALER with identity "py-dealer". Prints "client-key Z85".
#
# MODE "talk": exchange the messages below, then print
# "ok disconnects=N handshakes=M". MODE "silent": expect no message; print
# monitor events ("event handshake-failed-auth STATUS", "event
# handshake-failed-protocol CODE", "event disconnected") as they happen,
# until a line "stop" arrives on stdin, then print "ok msgs=N".
#
# The talk: the DEALER sends [b"single"], then [b"multi", b"", b"x"*5000];
# the ROUTER answers [b"reply"], then [b"reply-multi", b"y"*70000, b"end"];
# both stay idle IDLE_MS (heartbeats only), print "idle-done"; the DEALER
# sends [b"after-idle"], the ROUTER answers [b"bye"].
import sys
import threading
import time
import zmq
from zmq.utils.z85 import encode as z85_encode
from zmq.utils.monitor import recv_monitor_message

TIMEOUT_MS = 20000


def out(line):
    print(line, flush=True)


def fail(msg):
    out("fail " + msg)
    sys.exit(1)


def event_line(ev):
    e, v = ev["event"], ev["value"]
    if e == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return "event handshake-failed-auth %d" % v
    if e == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return "event handshake-failed-protocol %#x" % v
    if e == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        return "event handshake-failed-no-detail %d" % v
    if e == zmq.EVENT_HANDSHAKE_SUCCEEDED:
        return "event handshake-succeeded"
    if e == zmq.EVENT_DISCONNECTED:
        return "event disconnected"
    return None


def count_disconnects(mon):
    n = 0
    while mon.poll(0):
        ev = recv_monitor_message(mon)
        if ev["event"] in (zmq.EVENT_DISCONNECTED, zmq.EVENT_CLOSED):
            n += 1
    return n


def heartbeat(s, ivl):
    if ivl:
        s.setsockopt(zmq.HEARTBEAT_IVL, ivl)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 10000)  # generous: the machine may be loaded


def recv(s):
    if not s.poll(TIMEOUT_MS):
        fail("no message within %d ms" % TIMEOUT_MS)
    return s.recv_multipart()


def silent(s, mon):
    """Report monitor events until "stop" on stdin; count messages."""
    poller = zmq.Poller()
    poller.register(s, zmq.POLLIN)
    poller.register(mon, zmq.POLLIN)
    poller.register(sys.stdin.fileno(), zmq.POLLIN)
    msgs = 0
    seen = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for sock, _ in poller.poll(1000):
            if sock is s:
                s.recv_multipart()
                msgs += 1
            elif sock is mon:
                line = event_line(recv_monitor_message(mon))
                if line and line not in seen:
                    seen.add(line)
                    out(line)
            else:
                cmd = sys.stdin.readline().strip()
                if cmd in ("stop", ""):
                    out("ok msgs=%d" % msgs)
                    return
    fail("no stop within 60 s")


def zap_handler(ctx, ready):
    zap = ctx.socket(zmq.REP)
    zap.linger = 0
    zap.bind("inproc://zeromq.zap.01")
    ready.set()
    seen = set()
    while True:
        try:
            req = zap.recv_multipart()
        except zmq.ContextTerminated:
            break
        version, request_id, mechanism = req[0], req[1], req[5]
        if mechanism == b"CURVE":
            key = z85_encode(req[6]).decode()
            if key not in seen:
                seen.add(key)
                out("zap-key " + key)
        zap.send_multipart([version, request_id, b"200", b"OK", b"user", b""])
    zap.close()


ctx = zmq.Context()
role, mode = sys.argv[1], sys.argv[2]
if role == "router":
    ivl, idle = int(sys.argv[3]), int(sys.argv[4])
    ready = threading.Event()
    threading.Thread(target=zap_handler, args=(ctx, ready), daemon=True).start()
    ready.wait()
    pub, sec = zmq.curve_keypair()
    s = ctx.socket(zmq.ROUTER)
    s.curve_server = True
    s.curve_secretkey = sec
    s.setsockopt(zmq.ZAP_DOMAIN, b"test")
    heartbeat(s, ivl)
    s.linger = 1000
    mon = s.get_monitor_socket()
    port = s.bind_to_random_port("tcp://127.0.0.1")
    out("server-key " + pub.decode())
    out("endpoint 127.0.0.1:%d" % port)
    if mode == "silent":
        silent(s, mon)
    else:
        m = recv(s)
        if m[1:] != [b"single"]:
            fail("single %r" % m[1:])
        peer = m[0]
        m = recv(s)
        if m[1:] != [b"multi", b"", b"x" * 5000]:
            fail("multi %r" % [f[:16] for f in m[1:]])
        s.send_multipart([peer, b"reply"])
        s.send_multipart([peer, b"reply-multi", b"y" * 70000, b"end"])
        time.sleep(idle / 1000.0)
        out("idle-done")
        m = recv(s)
        if m[1:] != [b"after-idle"]:
            fail("after-idle %r" % m[1:])
        s.send_multipart([peer, b"bye"])
        out("identity " + peer.decode(errors="replace"))
        time.sleep(0.2)
        out("ok disconnects=%d" % count_disconnects(mon))
elif role == "dealer":
    endpoint, server_key, ivl, idle = sys.argv[3], sys.argv[4].encode(), int(sys.argv[5]), int(sys.argv[6])
    pub, sec = zmq.curve_keypair()
    s = ctx.socket(zmq.DEALER)
    s.curve_serverkey = server_key
    s.curve_publickey = pub
    s.curve_secretkey = sec
    s.setsockopt(zmq.IDENTITY, b"py-dealer")
    heartbeat(s, ivl)
    s.linger = 1000
    mon = s.get_monitor_socket()
    out("client-key " + pub.decode())
    s.connect("tcp://" + endpoint)
    if mode == "silent":
        s.send_multipart([b"must-not-arrive"])
        silent(s, mon)
    else:
        s.send_multipart([b"single"])
        s.send_multipart([b"multi", b"", b"x" * 5000])
        m = recv(s)
        if m != [b"reply"]:
            fail("reply %r" % m)
        m = recv(s)
        if m != [b"reply-multi", b"y" * 70000, b"end"]:
            fail("reply-multi %r" % [f[:16] for f in m])
        time.sleep(idle / 1000.0)
        out("idle-done")
        s.send_multipart([b"after-idle"])
        m = recv(s)
        if m != [b"bye"]:
            fail("bye %r" % m)
        out("ok disconnects=%d" % count_disconnects(mon))
else:
    fail("unknown role " + role)
s.close(linger=0)
mon.close()
ctx.term()
