/* c_election_peer: a C zyre node for scripts/manual/c-election.sh.
 *
 * Usage: c_election_peer NAME IFACE GROUP CONTEST(0|1) RUN_MS [LEAVE_AT_MS]
 *
 * Joins GROUP on the beacon interface IFACE (contesting it when CONTEST is 1),
 * prints one line per event to stdout (UUID at start, then ENTER, EXIT, JOIN,
 * LEAVE, LEADER with the time in ms since start), leaves GROUP at LEAVE_AT_MS
 * when given, and stops after RUN_MS. With C_ELECTION_VERBOSE set in the
 * environment, zyre logs its election steps to stderr. Needs zyre built with its draft API
 * (zyre_set_contest_in_group, the LEADER event). Our code; it only calls zyre.
 */
#define ZYRE_BUILD_DRAFT_API 1
#include <zyre.h>
#include <stdio.h>
#include <stdlib.h>

int main (int argc, char *argv [])
{
    if (argc < 6) {
        fprintf (stderr, "usage: %s NAME IFACE GROUP CONTEST RUN_MS [LEAVE_AT_MS]\n", argv [0]);
        return 2;
    }
    const char *group = argv [3];
    int contest = atoi (argv [4]);
    int64_t run_ms = atoll (argv [5]);
    int64_t leave_at = argc > 6? atoll (argv [6]): -1;

    zyre_t *node = zyre_new (argv [1]);
    if (!node)
        return 1;
    zyre_set_interface (node, argv [2]);
    if (getenv ("C_ELECTION_VERBOSE"))
        zyre_set_verbose (node);
    zyre_set_interval (node, 250);
    if (zyre_start (node)) {
        fprintf (stderr, "zyre_start failed\n");
        return 1;
    }
    printf ("UUID %s %s\n", zyre_uuid (node), zyre_name (node));
    fflush (stdout);
    if (contest)
        zyre_set_contest_in_group (node, group);
    zyre_join (node, group);

    zpoller_t *poller = zpoller_new (zyre_socket (node), NULL);
    int64_t start = zclock_mono ();
    while (true) {
        int64_t now = zclock_mono () - start;
        if (now >= run_ms)
            break;
        if (leave_at >= 0 && now >= leave_at) {
            zyre_leave (node, group);
            printf ("%lld SELF-LEAVE %s\n", (long long) now, group);
            fflush (stdout);
            leave_at = -1;
        }
        void *which = zpoller_wait (poller, 100);
        if (!which)
            continue;
        zyre_event_t *event = zyre_event_new (node);
        if (!event)
            break;
        printf ("%lld %s %s %s %s\n", (long long) (zclock_mono () - start),
                zyre_event_type (event), zyre_event_peer_uuid (event),
                zyre_event_peer_name (event),
                zyre_event_group (event)? zyre_event_group (event): "-");
        fflush (stdout);
        zyre_event_destroy (&event);
    }
    zpoller_destroy (&poller);
    zyre_stop (node);
    zyre_destroy (&node);
    return 0;
}
