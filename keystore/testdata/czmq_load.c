// czmq_load loads a certificate with the real czmq's zcert_load(PATH) (which
// tries PATH_secret first, then PATH) and prints, one per line:
//   public=<Z85>
//   secret=<Z85>
//   meta.<name>=<value>   (for each metadata item)
// Exit status 1 if czmq cannot load it. Used by keystore's tests.
#include <czmq.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: czmq_load PATH\n");
        return 2;
    }
    zcert_t *cert = zcert_load(argv[1]);
    if (!cert) {
        fprintf(stderr, "zcert_load failed\n");
        return 1;
    }
    printf("public=%s\nsecret=%s\n", zcert_public_txt(cert), zcert_secret_txt(cert));
    zlist_t *keys = zcert_meta_keys(cert);
    zlist_sort(keys, NULL);
    for (char *k = (char *) zlist_first(keys); k; k = (char *) zlist_next(keys))
        printf("meta.%s=%s\n", k, zcert_meta(cert, k));
    zlist_destroy(&keys);
    zcert_destroy(&cert);
    return 0;
}
