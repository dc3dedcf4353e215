// Linux interfaces Swift's Glibc module does not expose: epoll and eventfd.
#ifndef CROUPIER_CLINUX_H
#define CROUPIER_CLINUX_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

// accept4 is a GNU extension the Glibc module hides.
int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);

// Names the calling thread (at most 15 bytes), for top, perf and /proc.
void croupier_set_thread_name(const char *name);

// Gives malloc's free memory back to the system (malloc_trim(0)).
void croupier_return_free_memory(void);
#endif
