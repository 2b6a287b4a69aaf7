// zbeacon_peer: a czmq zbeacon that publishes argv[1] every 100 ms on UDP
// port 5670 of the interface in ZSYS_INTERFACE, prints every datagram it
// hears as "HEARD <ip> <payload>". Once it has heard argv[2] it keeps
// publishing until its stdin closes, then exits 0; it exits 1 after 20 s
// without hearing argv[2]. Used by czmq_test.go inside a netns lab.
#include <czmq.h>

int main (int argc, char *argv [])
{
    if (argc != 3) {
        fprintf (stderr, "usage: zbeacon_peer publish expect\n");
        return 2;
    }
    zactor_t *beacon = zactor_new (zbeacon, NULL);
    if (!beacon)
        return 2;
    zsock_send (beacon, "si", "CONFIGURE", 5670);
    char *hostname = zstr_recv (beacon);
    printf ("HOST %s\n", hostname ? hostname : "");
    fflush (stdout);
    if (!hostname || !*hostname) {
        zstr_free (&hostname);
        zactor_destroy (&beacon);
        return 2;
    }
    zstr_free (&hostname);
    zsock_send (beacon, "sbi", "PUBLISH", argv [1], strlen (argv [1]), 100);
    zsock_send (beacon, "sb", "SUBSCRIBE", "", 0);
    zsock_set_rcvtimeo (beacon, 500);

    int rc = 1;
    int64_t stop_at = zclock_mono () + 20000;
    while (zclock_mono () < stop_at) {
        char *ip = zstr_recv (beacon);
        if (!ip)
            continue;
        zframe_t *frame = zframe_recv (beacon);
        if (frame) {
            printf ("HEARD %s %.*s\n", ip, (int) zframe_size (frame), (char *) zframe_data (frame));
            fflush (stdout);
            bool done = zframe_size (frame) == strlen (argv [2])
                && memcmp (zframe_data (frame), argv [2], zframe_size (frame)) == 0;
            zframe_destroy (&frame);
            if (done) {
                rc = 0;
                zstr_free (&ip);
                break;
            }
        }
        zstr_free (&ip);
    }
    if (rc == 0) {
        //  Keep publishing (in the actor's thread) until the parent is done
        char buf [256];
        while (fread (buf, 1, sizeof buf, stdin) > 0)
            ;
    }
    zstr_sendx (beacon, "SILENCE", NULL);
    zactor_destroy (&beacon);
    return rc;
}
