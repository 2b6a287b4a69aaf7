"""ZRE wire helpers shared by the test peers (zre_peer.py, zre_curve_peer.py):
the field encodings of zre_msg.c, a bounds-checked reader, and the HELLO as
zyre_node.c reads it. Imported from the scripts' own directory.
"""
import os
import struct
import sys

TIMEOUT_MS = 20000


def fail(msg):
    sys.stderr.write(os.path.basename(sys.argv[0]) + ": " + msg + "\n")
    sys.exit(1)


def string(s):
    b = s.encode()
    return struct.pack("B", len(b)) + b


def longstr(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b


def header(msg_id, seq):
    return b"\xaa\xa1" + struct.pack(">BBH", msg_id, 2, seq)


class Reader:
    def __init__(self, b):
        self.b, self.off = b, 0

    def take(self, n):
        if self.off + n > len(self.b):
            fail("truncated frame at offset %d" % self.off)
        v = self.b[self.off:self.off + n]
        self.off += n
        return v

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def string(self):
        return self.take(self.u8()).decode()

    def longstr(self):
        return self.take(self.u32()).decode()


def recv(sock, what):
    if not sock.poll(TIMEOUT_MS):
        fail("timeout waiting for " + what)
    return sock.recv_multipart()


def recv_hello(sock):
    """Receives one HELLO on a ROUTER and decodes it as zyre_node.c would:
    returns (routing id, endpoint, groups, status, name, headers as a list
    of (key, value) in wire order)."""
    frames = recv(sock, "HELLO")
    if len(frames) != 2:
        fail("HELLO: %d frames with the routing id, want 2" % len(frames))
    ident, body = frames
    if len(ident) != 17 or ident[0] != 1:
        fail("routing id %s, want 01 + UUID" % ident.hex())
    r = Reader(body)
    if r.take(2) != b"\xaa\xa1":
        fail("bad signature")
    msg_id, version, seq = r.u8(), r.u8(), r.u16()
    if (msg_id, version, seq) != (1, 2, 1):
        fail("HELLO id/version/sequence = %d/%d/%d, want 1/2/1" % (msg_id, version, seq))
    endpoint = r.string()
    groups = [r.longstr() for _ in range(r.u32())]
    status = r.u8()
    name = r.string()
    headers = [(r.string(), r.longstr()) for _ in range(r.u32())]
    if r.off != len(body):
        fail("%d octets left after the HELLO fields" % (len(body) - r.off))
    return ident, endpoint, groups, status, name, headers


def expect_whisper(sock, seq, content):
    """Waits on a ROUTER for the WHISPER with sequence seq and exactly the
    content frames given, skipping the PINGs an evasive check may send
    first; fails on anything else."""
    while True:
        frames = recv(sock, "WHISPER")
        r = Reader(frames[1])
        if r.take(2) != b"\xaa\xa1":
            fail("bad signature")
        msg_id, version, got = r.u8(), r.u8(), r.u16()
        if version != 2:
            fail("version %d" % version)
        if msg_id == 6:  # a PING from an evasive check: not what we wait for
            continue
        if msg_id != 2:
            fail("message id %d, want WHISPER" % msg_id)
        if got != seq:
            fail("WHISPER sequence %d, want %d" % (got, seq))
        if frames[2:] != content:
            fail("WHISPER content %r" % frames[2:])
        return
