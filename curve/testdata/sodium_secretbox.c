// sodium_secretbox: the libsodium side of BenchmarkSecretbox. It seals
// COUNT messages of SIZE octets with crypto_secretbox_easy (XSalsa20-
// Poly1305, the box of every CurveZMQ MESSAGE; libzmq 4.3.4 seals with
// libsodium's crypto_box_easy_afternm, the same construction) into one
// reused buffer, then opens the last box COUNT times with
// crypto_secretbox_open_easy, as BenchmarkSecretbox does with
// golang.org/x/crypto/nacl/secretbox. One thread, no I/O.
// Build: cc -O2 -o sodium_secretbox sodium_secretbox.c -lsodium
// Usage: sodium_secretbox SIZE COUNT -> prints "seal_ns N open_ns M"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: sodium_secretbox SIZE COUNT\n"); return 2; }
    size_t size = strtoul(argv[1], NULL, 10);
    long count = strtol(argv[2], NULL, 10);
    if (count < 1 || sodium_init() < 0) { fprintf(stderr, "sodium_secretbox: init\n"); return 1; }
    unsigned char key[crypto_secretbox_KEYBYTES], nonce[crypto_secretbox_NONCEBYTES];
    randombytes_buf(key, sizeof key);
    randombytes_buf(nonce, sizeof nonce);
    unsigned char *msg = calloc(1, size + 1);
    unsigned char *box = malloc(size + crypto_secretbox_MACBYTES);
    unsigned char *out = malloc(size + 1);
    if (!msg || !box || !out) { fprintf(stderr, "sodium_secretbox: out of memory\n"); return 1; }
    long long t0 = now_ns();
    for (long i = 0; i < count; i++) {
        nonce[23] = (unsigned char)i;
        crypto_secretbox_easy(box, msg, size, nonce, key);
    }
    long long t1 = now_ns();
    for (long i = 0; i < count; i++) {
        if (crypto_secretbox_open_easy(out, box, size + crypto_secretbox_MACBYTES, nonce, key) != 0) {
            fprintf(stderr, "sodium_secretbox: box does not open\n");
            return 1;
        }
    }
    long long t2 = now_ns();
    printf("seal_ns %lld open_ns %lld\n", t1 - t0, t2 - t1);
    return 0;
}
