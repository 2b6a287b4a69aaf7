#!/usr/bin/python3
"""A ZRE peer built on real libzmq (python3-zmq) that speaks like the C
zyre node, byte for byte: DEALER identity 0x01 + UUID, ZRE version 2,
HELLO laid out like testdata/zre/hello.hex, sequence numbers from 1.

Usage: zre_peer.py OUR_UUID_HEX GO_UUID_HEX GO_NAME
Prints "ENDPOINT tcp://127.0.0.1:PORT" once its ROUTER is bound, then waits
for the Go node's HELLO, connects back, sends HELLO, WHISPER and SHOUT, waits
for the Go node's WHISPER and prints "OK". Any failure exits non-zero with a
message on stderr. Only 127.0.0.1 is used.
"""
import struct
import sys

import zmq

from zrewire import expect_whisper, fail, header, longstr, recv_hello, string


def main():
    if len(sys.argv) != 4:
        fail("usage: zre_peer.py OUR_UUID_HEX GO_UUID_HEX GO_NAME")
    me = bytes.fromhex(sys.argv[1])
    go_uuid = bytes.fromhex(sys.argv[2])
    go_name = sys.argv[3]
    ctx = zmq.Context()
    inbox = ctx.socket(zmq.ROUTER)
    inbox.setsockopt(zmq.LINGER, 0)
    port = inbox.bind_to_random_port("tcp://127.0.0.1")
    endpoint = "tcp://127.0.0.1:%d" % port
    print("ENDPOINT " + endpoint, flush=True)

    # The Go node's HELLO, as zyre_node.c would read it.
    ident, go_endpoint, groups, status, name, headers = recv_hello(inbox)
    if ident != b"\x01" + go_uuid:
        fail("routing id %s, want 01%s" % (ident.hex(), go_uuid.hex()))
    if name != go_name:
        fail("name %r, want %r" % (name, go_name))
    if groups != ["GLOBAL"] or status != 1:
        fail("groups %r status %d, want ['GLOBAL'] 1" % (groups, status))
    if headers != [("X-LANG", "go"), ("X-ROLE", "interop"), ("X-ZRE-GOODBYE", "1")]:
        fail("headers %r" % headers)
    if not go_endpoint.startswith("tcp://127.0.0.1:"):
        fail("endpoint %r" % go_endpoint)

    # Connect back like zyre_peer_connect and talk.
    out = ctx.socket(zmq.DEALER)
    out.setsockopt(zmq.LINGER, 2000)
    out.setsockopt(zmq.IDENTITY, b"\x01" + me)
    out.connect(go_endpoint)
    hello = (header(1, 1) + string(endpoint)
             + struct.pack(">I", 2) + longstr("GLOBAL") + longstr("chat")
             + struct.pack("B", 2) + string("node-py")
             + struct.pack(">I", 2) + string("X-ROLE") + longstr("tester")
             + string("X-COLOR") + longstr("blue"))
    out.send(hello)
    out.send_multipart([header(2, 2), b"Hello", b"\x00\x01\x7f\x80\xff"])
    out.send_multipart([header(3, 3) + string("GLOBAL"), b"Hello, World"])

    # The Go node's WHISPER (sequence 2 on its DEALER).
    expect_whisper(inbox, 2, [b"from go", b"\x00\xff"])
    print("OK", flush=True)
    out.close()
    inbox.close()
    ctx.term()


if __name__ == "__main__":
    main()
