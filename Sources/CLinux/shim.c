#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include "CLinux.h"

void croupier_set_thread_name(const char *name) {
    pthread_setname_np(pthread_self(), name);
}

void croupier_return_free_memory(void) {
    malloc_trim(0);
}
