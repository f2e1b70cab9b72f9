/*
 * Hooks for tests, fuzzers and the conformance tools: any message, or raw
 * bytes, on a client's socket, bypassing the client's own checks. Not
 * installed and not exported from libumdev.so: programs that use them
 * link the static library (umdev_static), which puts lib/include on their
 * include path.
 */
#ifndef UMDEV_CLIENT_TESTING_H
#define UMDEV_CLIENT_TESTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/client.h"
#include "umdev/wire.h"

/**
 * umdev_client_raw() - send any message and wait for its reply (tests).
 * @cmd/@flags/@payload/@len: the message; a fresh msg_id is used.
 * @fds/@nfds: sent with it.
 * @reply/@reply_cap: receives the reply payload; *@reply_len its length.
 * @reply_hdr: if not NULL, the reply header.
 * With VFIO_USER_F_NO_REPLY in @flags, returns once sent.
 * Return: 0, the peer's -errno, or a transport error.
 */
int umdev_client_raw(struct umdev_client *c, uint16_t cmd, uint32_t flags,
                     const void *payload, size_t len, const int *fds,
                     size_t nfds, void *reply, size_t reply_cap,
                     size_t *reply_len, struct vfio_user_header *reply_hdr);

/** Send raw bytes on the socket as they are (stream-level tests). */
int umdev_client_send_bytes(struct umdev_client *c, const void *buf,
                            size_t len);

#endif /* UMDEV_CLIENT_TESTING_H */
