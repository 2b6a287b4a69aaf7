// zgossip_peer: a ZGOSSIP peer on czmq for zgossip's interop tests.
//
//   zgossip_peer server plain           czmq's zgossip actor, bound to 127.0.0.1
//   zgossip_peer client plain ENDPOINT  czmq's zgossip actor, connected to ENDPOINT
//   zgossip_peer server curve           a CURVE ROUTER on 127.0.0.1 speaking ZGOSSIP
//   zgossip_peer client curve ENDPOINT SERVERKEY
//                                       a CURVE DEALER speaking ZGOSSIP
//
// Debian's czmq is built without its draft API, where zgossip's CURVE
// (SET PUBLICKEY, CONNECT with a key) lives: the curve modes frame the
// messages themselves (zgossip_msg.xml) on czmq sockets with libzmq's
// CURVE, as the draft actor's sockets do.
//
// Each publishes the tuple "c-key" = "c-value", prints "PORT <n>" (and
// " KEY <z85>" in curve) when it serves, then "DELIVER <key> <value>" for
// every tuple it gets, and exits 0 when stdin closes (1 after 30 s).
#include <czmq.h>

static void deliver (const char *key, const char *value)
{
    printf ("DELIVER %s %s\n", key, value);
    fflush (stdout);
}

// frame builds a ZGOSSIP message: id, and for PUBLISH key and value (ttl 0).
static zframe_t *frame (int id, const char *key, const char *value)
{
    size_t kl = key? strlen (key): 0, vl = value? strlen (value): 0;
    size_t size = 4 + (id == 2? 1 + kl + 4 + vl + 4: 0);
    zframe_t *f = zframe_new (NULL, size);
    byte *b = zframe_data (f);
    b [0] = 0xAA; b [1] = 0xA0; b [2] = (byte) id; b [3] = 1;
    if (id == 2) {
        byte *p = b + 4;
        *p++ = (byte) kl; memcpy (p, key, kl); p += kl;
        *p++ = (byte) (vl >> 24); *p++ = (byte) (vl >> 16); *p++ = (byte) (vl >> 8); *p++ = (byte) vl;
        memcpy (p, value, vl); p += vl;
        memset (p, 0, 4);
    }
    return f;
}

// parse reads a ZGOSSIP message; for PUBLISH it prints the tuple.
static int parse (zframe_t *f)
{
    byte *b = zframe_data (f);
    size_t n = zframe_size (f);
    if (n < 4 || b [0] != 0xAA || b [1] != 0xA0 || b [3] != 1)
        return -1;
    if (b [2] == 2) {
        if (n < 5 || n < 5 + (size_t) b [4] + 4)
            return -1;
        size_t kl = b [4];
        byte *v = b + 5 + kl;
        size_t vl = ((size_t) v [0] << 24) | (v [1] << 16) | (v [2] << 8) | v [3];
        if (n != 5 + kl + 4 + vl + 4)
            return -1;
        char *key = zsys_sprintf ("%.*s", (int) kl, (char *) b + 5);
        char *value = zsys_sprintf ("%.*s", (int) vl, (char *) v + 4);
        deliver (key, value);
        zstr_free (&key);
        zstr_free (&value);
    }
    return b [2];
}

static int stdin_closed (void)
{
    struct timeval tv = {0, 0};
    fd_set fds;
    FD_ZERO (&fds);
    FD_SET (0, &fds);
    if (select (1, &fds, NULL, NULL, &tv) > 0) {
        char buf [64];
        return read (0, buf, sizeof buf) <= 0;
    }
    return 0;
}

static int run_actor (int server, const char *endpoint)
{
    zactor_t *gossip = zactor_new (zgossip, "c-peer");
    if (server) {
        zstr_sendx (gossip, "BIND", "tcp://127.0.0.1:*", NULL);
        zstr_sendx (gossip, "PORT", NULL);
        char *cmd = NULL, *port = NULL;
        zstr_recvx (gossip, &cmd, &port, NULL);
        printf ("PORT %s\n", port);
        fflush (stdout);
        zstr_free (&cmd);
        zstr_free (&port);
    }
    else
        zstr_sendx (gossip, "CONNECT", endpoint, NULL);
    zstr_sendx (gossip, "PUBLISH", "c-key", "c-value", NULL);
    zsock_set_rcvtimeo (gossip, 100);
    int64_t deadline = zclock_mono () + 30000;
    while (zclock_mono () < deadline) {
        char *cmd = NULL, *key = NULL, *value = NULL;
        if (zstr_recvx (gossip, &cmd, &key, &value, NULL) >= 1 && cmd && streq (cmd, "DELIVER"))
            deliver (key, value);
        zstr_free (&cmd);
        zstr_free (&key);
        zstr_free (&value);
        if (stdin_closed ()) {
            zactor_destroy (&gossip);
            return 0;
        }
    }
    zactor_destroy (&gossip);
    return 1;
}

static int run_curve (int server, const char *endpoint, const char *server_key)
{
    zcert_t *cert = zcert_new ();
    zsock_t *sock = zsock_new (server? ZMQ_ROUTER: ZMQ_DEALER);
    zcert_apply (cert, sock);
    if (server) {
        zsock_set_curve_server (sock, 1);
        int port = zsock_bind (sock, "tcp://127.0.0.1:*");
        printf ("PORT %d KEY %s\n", port, zcert_public_txt (cert));
        fflush (stdout);
    }
    else {
        zsock_set_curve_serverkey (sock, server_key);
        zsock_connect (sock, "%s", endpoint);
        zframe_t *f = frame (1, NULL, NULL);
        zframe_send (&f, sock, 0);
        f = frame (2, "c-key", "c-value");
        zframe_send (&f, sock, 0);
    }
    zsock_set_rcvtimeo (sock, 100);
    int64_t deadline = zclock_mono () + 30000, ping = 0;
    while (zclock_mono () < deadline) {
        zmsg_t *msg = zmsg_recv (sock);
        if (msg) {
            zframe_t *id = server? zmsg_pop (msg): NULL;
            zframe_t *f = zmsg_pop (msg);
            int type = f? parse (f): -1;
            if (server && type == 1) {          //  HELLO: our tuple
                zframe_t *r = zframe_dup (id);
                zframe_send (&r, sock, ZFRAME_MORE);
                zframe_t *p = frame (2, "c-key", "c-value");
                zframe_send (&p, sock, 0);
            }
            else
            if (server && type == 3) {          //  PING: PONG
                zframe_t *r = zframe_dup (id);
                zframe_send (&r, sock, ZFRAME_MORE);
                zframe_t *p = frame (4, NULL, NULL);
                zframe_send (&p, sock, 0);
            }
            zframe_destroy (&f);
            zframe_destroy (&id);
            zmsg_destroy (&msg);
        }
        if (!server && zclock_mono () >= ping) {
            zframe_t *f = frame (3, NULL, NULL);
            zframe_send (&f, sock, 0);
            ping = zclock_mono () + 300;
        }
        if (stdin_closed ()) {
            zsock_destroy (&sock);
            zcert_destroy (&cert);
            return 0;
        }
    }
    zsock_destroy (&sock);
    zcert_destroy (&cert);
    return 1;
}

int main (int argc, char *argv [])
{
    if (argc < 3) {
        fprintf (stderr, "usage: zgossip_peer server|client plain|curve [ENDPOINT [SERVERKEY]]\n");
        return 2;
    }
    int server = streq (argv [1], "server");
    if (streq (argv [2], "plain"))
        return run_actor (server, server? NULL: argv [3]);
    if (!server && argc < 5)
        return 2;
    return run_curve (server, server? NULL: argv [3], server? NULL: argv [4]);
}
