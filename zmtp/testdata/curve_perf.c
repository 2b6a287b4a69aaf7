// curve_perf: the libzmq side of zmtp's CURVE benchmarks
// (curve_bench_test.go), with CURVE on. Loopback TCP only.
//
//   curve_perf thr SIZE COUNT  one DEALER (CURVE client, second thread)
//                              streams COUNT messages of SIZE octets to one
//                              ROUTER (CURVE server, main thread), like
//                              BenchmarkCurveDealerToRouter
//   curve_perf hs COUNT        COUNT times: a new DEALER connects, finishes
//                              the CURVE handshake, sends one 1-octet
//                              message that the ROUTER receives, and closes,
//                              like BenchmarkCurveHandshake
//
// Prints "elapsed_ns N" (the first message or connection is a warm-up and
// is not timed). Keys come from zmq_curve_keypair.
// Build: cc -O2 -o curve_perf curve_perf.c -lzmq -lpthread
#include <zmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *ctx;
static char endpoint[256];
static size_t size;
static long count;
static char server_pub[41], server_sec[41], client_pub[41], client_sec[41];

static void die(const char *what) {
    fprintf(stderr, "curve_perf: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// new_dealer: with_id gives the routing id "bench" (throughput); the
// handshake loop goes without, since the ROUTER refuses a second connection
// with the id of one it has not yet seen close.
static void *new_dealer(int with_id) {
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    int hwm = 1000;
    zmq_setsockopt(d, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (with_id)
        zmq_setsockopt(d, ZMQ_ROUTING_ID, "bench", 5);
    if (zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, server_pub, 40) != 0) die("serverkey");
    if (zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, client_pub, 40) != 0) die("publickey");
    if (zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, client_sec, 40) != 0) die("secretkey");
    if (zmq_connect(d, endpoint) != 0) die("connect");
    return d;
}

static void *sender(void *arg) {
    (void)arg;
    void *d = new_dealer(1);
    char *buf = calloc(1, size ? size : 1);
    for (long i = 0; i < count + 1; i++)
        if (zmq_send(d, buf, size, 0) < 0) die("send");
    int linger = -1;
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(d);
    free(buf);
    return NULL;
}

int main(int argc, char **argv) {
    int hs = argc == 3 && strcmp(argv[1], "hs") == 0;
    int thr = argc == 4 && strcmp(argv[1], "thr") == 0;
    if (!hs && !thr) {
        fprintf(stderr, "usage: curve_perf thr SIZE COUNT | curve_perf hs COUNT\n");
        return 2;
    }
    if (thr) {
        size = strtoul(argv[2], NULL, 10);
        count = strtol(argv[3], NULL, 10);
    } else {
        size = 1;
        count = strtol(argv[2], NULL, 10);
    }
    if (zmq_curve_keypair(server_pub, server_sec) != 0) die("curve_keypair");
    if (zmq_curve_keypair(client_pub, client_sec) != 0) die("curve_keypair");
    ctx = zmq_ctx_new();
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    int hwm = 1000, one = 1;
    zmq_setsockopt(r, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_setsockopt(r, ZMQ_CURVE_SERVER, &one, sizeof one) != 0) die("curve_server");
    if (zmq_setsockopt(r, ZMQ_CURVE_SECRETKEY, server_sec, 40) != 0) die("server secretkey");
    if (zmq_bind(r, "tcp://127.0.0.1:*") != 0) die("bind");
    size_t len = sizeof endpoint;
    zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, endpoint, &len);
    zmq_msg_t id, m;
    zmq_msg_init(&id);
    zmq_msg_init(&m);
    long long start = 0;
    pthread_t t;
    if (thr)
        pthread_create(&t, NULL, sender, NULL);
    for (long i = 0; i < count + 1; i++) {
        void *d = NULL;
        if (hs) {
            d = new_dealer(0);
            if (zmq_send(d, "x", 1, 0) < 0) die("send");
        }
        if (zmq_msg_recv(&id, r, 0) < 0) die("recv id");
        if (zmq_msg_recv(&m, r, 0) < 0) die("recv body");
        if (zmq_msg_size(&m) != size) { fprintf(stderr, "curve_perf: bad size\n"); return 1; }
        if (hs) {
            int linger = 0;
            zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
            zmq_close(d);
        }
        if (i == 0) start = now_ns(); // the first message is the warm-up
    }
    long long el = now_ns() - start;
    if (thr)
        pthread_join(t, NULL);
    zmq_msg_close(&id);
    zmq_msg_close(&m);
    zmq_close(r);
    zmq_ctx_term(ctx);
    printf("elapsed_ns %lld\n", el);
    return 0;
}
