// czmq_save writes a certificate with the real czmq: zcert_new, then
// zcert_set_meta for each NAME=VALUE argument, then zcert_save(PATH), which
// writes PATH (public) and PATH_secret. It prints the public and secret keys
// in Z85, one per line, so the Go test can compare what it parses.
// Used by keystore's tests; compiled at test time.
#include <czmq.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: czmq_save PATH [NAME=VALUE...]\n");
        return 2;
    }
    zcert_t *cert = zcert_new();
    if (!cert) {
        fprintf(stderr, "zcert_new failed\n");
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "bad metadata %s\n", argv[i]);
            return 2;
        }
        *eq = 0;
        zcert_set_meta(cert, argv[i], "%s", eq + 1);
    }
    if (zcert_save(cert, argv[1]) != 0) {
        fprintf(stderr, "zcert_save failed\n");
        return 1;
    }
    printf("%s\n%s\n", zcert_public_txt(cert), zcert_secret_txt(cert));
    zcert_destroy(&cert);
    return 0;
}
