#!/usr/bin/python3
"""A ZRE peer on real libzmq (python3-zmq) in CURVE mode that behaves as the
C zyre node does with zyre_set_zcert: its ROUTER inbox is a CURVE server
with its own keypair, its DEALER to a peer is a CURVE client that knows the
peer's public key, its HELLO carries X-PUBLICKEY (its Z85 public key), and
its UUID is random (uuid4), so it is "unbound". Like the C node it runs no
ZAP handler and checks nothing of the client's key. Where the C node would
ignore a HELLO without X-PUBLICKEY, this script fails.

Usage: zre_curve_peer.py GO_KEY_Z85 GO_NAME
Prints "ENDPOINT tcp://127.0.0.1:PORT", "KEY <z85>" and "UUID <hex>" once its
ROUTER is bound, then waits for the Go node's HELLO, connects back with
CURVE, sends HELLO, WHISPER and SHOUT, waits for the Go node's WHISPER and
prints "OK". Any failure exits non-zero with a message on stderr. Only
127.0.0.1 is used.
"""
import struct
import sys
import uuid

import zmq

from zrewire import expect_whisper, fail, header, longstr, recv_hello, string


def main():
    if len(sys.argv) != 3:
        fail("usage: zre_curve_peer.py GO_KEY_Z85 GO_NAME")
    go_key = sys.argv[1].encode()
    go_name = sys.argv[2]
    if not zmq.has("curve"):
        fail("libzmq without CURVE")
    me = uuid.uuid4().bytes
    public, secret = zmq.curve_keypair()
    while public[:1] == b"0":  # Z85 '0' is 0x00 first: C zyre reads it as no key
        public, secret = zmq.curve_keypair()
    ctx = zmq.Context()
    inbox = ctx.socket(zmq.ROUTER)
    inbox.setsockopt(zmq.LINGER, 0)
    inbox.curve_server = True
    inbox.curve_publickey = public
    inbox.curve_secretkey = secret
    port = inbox.bind_to_random_port("tcp://127.0.0.1")
    endpoint = "tcp://127.0.0.1:%d" % port
    print("ENDPOINT " + endpoint, flush=True)
    print("KEY " + public.decode(), flush=True)
    print("UUID " + me.hex(), flush=True)

    # The Go node's HELLO, as zyre_node.c would read it in CURVE mode.
    _, go_endpoint, groups, _, name, header_list = recv_hello(inbox)
    headers = dict(header_list)
    if name != go_name:
        fail("name %r, want %r" % (name, go_name))
    if headers.get("X-PUBLICKEY") != go_key.decode():
        # The C node ignores a HELLO without X-PUBLICKEY in CURVE mode.
        fail("X-PUBLICKEY %r, want %r" % (headers.get("X-PUBLICKEY"), go_key.decode()))
    if groups != ["GLOBAL"]:
        fail("groups %r" % groups)
    if not go_endpoint.startswith("tcp://127.0.0.1:"):
        fail("endpoint %r" % go_endpoint)

    # Connect back like zyre_peer_connect with a server key: CURVE client.
    out = ctx.socket(zmq.DEALER)
    out.setsockopt(zmq.LINGER, 2000)
    out.setsockopt(zmq.IDENTITY, b"\x01" + me)
    out.curve_serverkey = go_key
    out.curve_publickey = public
    out.curve_secretkey = secret
    out.connect(go_endpoint)
    hello = (header(1, 1) + string(endpoint)
             + struct.pack(">I", 1) + longstr("GLOBAL")
             + struct.pack("B", 1) + string("c-node-py")
             + struct.pack(">I", 2) + string("X-ROLE") + longstr("tester")
             + string("X-PUBLICKEY") + longstr(public.decode()))
    out.send(hello)
    out.send_multipart([header(2, 2), b"Hello over CURVE", b"\x00\x01\xff"])
    out.send_multipart([header(3, 3) + string("GLOBAL"), b"Shout over CURVE"])

    # The Go node's WHISPER (sequence 2 on its DEALER).
    expect_whisper(inbox, 2, [b"from go over CURVE"])
    print("OK", flush=True)
    out.close()
    inbox.close()
    ctx.term()


if __name__ == "__main__":
    main()
