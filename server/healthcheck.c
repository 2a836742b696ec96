/*
 * `qdq-server --healthcheck`: asks a running server (at the configured listen address) for
 * GET /healthz and exits 0 when it answers 200. Container HEALTHCHECKs use it, so the image
 * needs no curl. With TLS configured it checks only that the port accepts connections.
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "healthcheck.h"

int srv_healthcheck(const cfg *c)
{
    const char *host = c->listen_host;
    if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    char port[16];
    snprintf(port, sizeof port, "%d", c->listen_port);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        fprintf(stderr, "healthcheck: cannot resolve %s\n", host);
        return 1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    struct timeval tv = { 3, 0 };
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    int ok = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    freeaddrinfo(ai);
    if (!ok) {
        fprintf(stderr, "healthcheck: cannot connect to %s:%s\n", host, port);
        if (fd >= 0)
            close(fd);
        return 1;
    }
    if (c->tls_cert[0]) {
        close(fd);
        return 0;
    }
    static const char req[] = "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
    char buf[64] = { 0 };
    ok = write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1) &&
         read(fd, buf, sizeof buf - 1) >= 12 && strncmp(buf, "HTTP/1.", 7) == 0 &&
         strncmp(buf + 9, "200", 3) == 0;
    close(fd);
    if (!ok)
        fprintf(stderr, "healthcheck: %s:%s did not answer 200\n", host, port);
    return ok ? 0 : 1;
}
