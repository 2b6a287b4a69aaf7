// libzmq_rx: the libzmq receiver of BenchmarkPacedReceiver. One ROUTER
// (CURVE server when a secret key is given, else NULL) bound to loopback
// receives COUNT one-frame messages of SIZE octets from one DEALER, and
// reports the CPU time of this whole process (every thread: libzmq's I/O
// thread, its reaper, the main thread and the sink) from the first message
// to the last, beside the wall time of that window.
// With PIPE 1 the main thread passes each message on over an inproc PAIR
// to a second thread, which takes it: the shape of a C zyre node, whose
// actor thread reads the ROUTER and hands each event to the application's
// thread over the actor's inproc pipe (without zyre's own work).
// Build: cc -O2 -o libzmq_rx libzmq_rx.c -lzmq -lpthread
// Usage: libzmq_rx SIZE COUNT SECRET_Z85|- PIPE
//   prints "port N" once bound, then "cpu_ns C wall_ns W" and exits.
#include <zmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static void die(const char *what) {
    fprintf(stderr, "libzmq_rx: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static void *ctx;
static long count;
static long long t_end, cpu_end;

// sink takes the messages the main thread passes on; it stamps the end of
// the window when it has the last one.
static void *sink(void *arg) {
    (void)arg;
    void *p = zmq_socket(ctx, ZMQ_PAIR);
    if (zmq_connect(p, "inproc://pipe") != 0) die("connect pipe");
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (long i = 0; i < count; i++)
        if (zmq_msg_recv(&m, p, 0) < 0) die("recv pipe");
    t_end = now_ns();
    cpu_end = cpu_ns();
    zmq_msg_close(&m);
    zmq_close(p);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: libzmq_rx SIZE COUNT SECRET_Z85|- PIPE\n"); return 2; }
    size_t size = strtoul(argv[1], NULL, 10);
    count = strtol(argv[2], NULL, 10);
    int pipe = atoi(argv[4]);
    ctx = zmq_ctx_new();
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    if (strcmp(argv[3], "-") != 0) {
        int one = 1;
        if (zmq_setsockopt(r, ZMQ_CURVE_SERVER, &one, sizeof one) != 0) die("CURVE_SERVER");
        if (zmq_setsockopt(r, ZMQ_CURVE_SECRETKEY, argv[3], strlen(argv[3])) != 0) die("CURVE_SECRETKEY");
    }
    if (zmq_bind(r, "tcp://127.0.0.1:*") != 0) die("bind");
    void *p = NULL;
    pthread_t t;
    if (pipe) {
        p = zmq_socket(ctx, ZMQ_PAIR);
        int hwm = 0; // no limit: the sink keeps up, and nothing may drop
        zmq_setsockopt(p, ZMQ_SNDHWM, &hwm, sizeof hwm);
        if (zmq_bind(p, "inproc://pipe") != 0) die("bind pipe");
        pthread_create(&t, NULL, sink, NULL);
    }
    char endpoint[256];
    size_t len = sizeof endpoint;
    zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, endpoint, &len);
    printf("port %s\n", strrchr(endpoint, ':') + 1);
    fflush(stdout);
    zmq_msg_t id, m;
    zmq_msg_init(&id);
    zmq_msg_init(&m);
    long long t0 = 0, c0 = 0;
    for (long i = 0; i < count; i++) {
        if (zmq_msg_recv(&id, r, 0) < 0) die("recv id");
        if (zmq_msg_recv(&m, r, 0) < 0) die("recv body");
        if (zmq_msg_size(&m) != size || zmq_msg_more(&m)) { fprintf(stderr, "libzmq_rx: message %ld: bad size or frames\n", i); return 1; }
        if (i == 0) { t0 = now_ns(); c0 = cpu_ns(); }
        if (pipe && zmq_msg_send(&m, p, 0) < 0) die("send pipe");
    }
    if (pipe) {
        pthread_join(t, NULL);
        zmq_close(p);
    } else {
        t_end = now_ns();
        cpu_end = cpu_ns();
    }
    long long wall = t_end - t0, cpu = cpu_end - c0;
    printf("cpu_ns %lld wall_ns %lld\n", cpu, wall);
    fflush(stdout);
    zmq_msg_close(&id);
    zmq_msg_close(&m);
    int linger = 0;
    zmq_setsockopt(r, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(r);
    zmq_ctx_term(ctx);
    return 0;
}
