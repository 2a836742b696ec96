/*
 * Answers (respond.c): an HTTP status with a codec's answer (proto_answer: content type, body,
 * headers), error answers built from a failure, and queueing one on a connection.
 */
#ifndef SRV_RESPOND_H
#define SRV_RESPOND_H

#include <microhttpd.h>
#include <stdbool.h>

#include "codec.h"

typedef struct srv_answer {
    int status;     /* HTTP */
    proto_answer a; /* body, content type, extra headers */
} srv_answer;

/* The answer to a failure: status and word from the status table (status.h), the JSON body
 * {"error": msg, "code": word}, Retry-After when the code asks to come back, and Allow (the
 * route's methods) for a 405. Replaces whatever the answer held. */
void srv_answer_error(srv_answer *ans, const qdq_error *err, const char *allow);
/* A 200 JSON answer with a constant body. */
void srv_answer_json(srv_answer *ans, const char *text);
/* Frees what the answer holds. */
void srv_answer_clear(srv_answer *ans);

/* How to send an answer. */
typedef struct srv_send {
    const char *request_id;
    const char *accept_encoding; /* JSON answers are compressed when it asks (NULL: never) */
    bool close;                  /* add Connection: close (the server is draining) */
} srv_send;

/*
 * Queues the answer on the connection (which then owns its body); *bytes_out gets the body's
 * length as sent. MHD_NO when the response could not be made (the connection is dropped).
 */
enum MHD_Result srv_answer_queue(struct MHD_Connection *conn, srv_answer *ans,
                                 const srv_send *how, uint64_t *bytes_out);

#endif
