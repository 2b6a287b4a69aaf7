// libzmq_thr: the libzmq side of BenchmarkLibzmqDealerToRouter. One DEALER
// streams COUNT messages of SIZE octets to one ROUTER over loopback TCP (the
// ROUTER in the main thread, the DEALER in a second thread), like
// BenchmarkDealerToRouter does with our Router and Dealer.
// Build: cc -O2 -o libzmq_thr libzmq_thr.c -lzmq -lpthread
// Usage: libzmq_thr SIZE COUNT   -> prints "elapsed_ns N"
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

static void die(const char *what) {
    fprintf(stderr, "libzmq_thr: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static void *sender(void *arg) {
    (void)arg;
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    int hwm = 1000;
    zmq_setsockopt(d, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(d, ZMQ_ROUTING_ID, "bench", 5);
    if (zmq_connect(d, endpoint) != 0) die("connect");
    char *buf = calloc(1, size ? size : 1);
    for (long i = 0; i < count + 1; i++)
        if (zmq_send(d, buf, size, 0) < 0) die("send");
    int linger = -1;
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(d);
    free(buf);
    return NULL;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: libzmq_thr SIZE COUNT\n"); return 2; }
    size = strtoul(argv[1], NULL, 10);
    count = strtol(argv[2], NULL, 10);
    ctx = zmq_ctx_new();
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    int hwm = 1000;
    zmq_setsockopt(r, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(r, "tcp://127.0.0.1:*") != 0) die("bind");
    size_t len = sizeof endpoint;
    zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, endpoint, &len);
    pthread_t t;
    pthread_create(&t, NULL, sender, NULL);
    zmq_msg_t id, m;
    zmq_msg_init(&id);
    zmq_msg_init(&m);
    long long start = 0;
    for (long i = 0; i < count + 1; i++) {
        if (zmq_msg_recv(&id, r, 0) < 0) die("recv id");
        if (zmq_msg_recv(&m, r, 0) < 0) die("recv body");
        if (zmq_msg_size(&m) != size) { fprintf(stderr, "libzmq_thr: bad size\n"); return 1; }
        if (i == 0) start = now_ns(); // the first message is the warm-up
    }
    long long el = now_ns() - start;
    pthread_join(t, NULL);
    zmq_msg_close(&id);
    zmq_msg_close(&m);
    zmq_close(r);
    zmq_ctx_term(ctx);
    printf("elapsed_ns %lld\n", el);
    return 0;
}
