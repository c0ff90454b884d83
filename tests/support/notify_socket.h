/*
 * notify_socket.h — a stand-in for systemd's notification socket in the
 * unit tests of what walrev sends it (sd_notify messages): a real AF_UNIX
 * datagram socket, bound at a path or in the abstract namespace. Fails the
 * test (cmocka) when it cannot be made.
 */
#ifndef WALREV_TESTS_NOTIFY_SOCKET_H
#define WALREV_TESTS_NOTIFY_SOCKET_H

/* Bind a datagram socket at name: a path, or with a leading '@' the rest of
 * name in the abstract namespace (as NOTIFY_SOCKET writes it). Returns its
 * fd, which the caller closes (and unlinks a path). */
int ts_listen_notify(const char *name);

#endif
