/*
 * http_client: a small libcurl wrapper for the black-box HTTP tests, plus the body helpers those
 * tests share (base64, and a JSON reader that keeps numbers as their exact text).
 *
 * Each thread has one CURL handle, created on first use, so consecutive requests of a thread
 * reuse its keep-alive connection. The handle is freed when the thread exits; the main thread
 * calls hc_thread_done() before it returns (leak checkers look).
 *
 *   hc_resp r;
 *   const char *h[] = { "Content-Type: application/json", NULL };
 *   hc_request("POST", url, h, body, len, &r);
 *   ... r.status, r.body, hc_header(&r, "content-type") ...
 *   hc_resp_free(&r);
 *
 * Requests carry no Content-Type unless the caller gives one (curl's form default is removed),
 * and no "Expect: 100-continue" unless the caller asks for it; when asked, curl waits for the
 * server's answer to it (up to a minute, not curl's default second) before it sends the body.
 *
 * With QDQ_CONTRACT_LOG=FILE in the environment, every exchange that got an HTTP answer is
 * appended to FILE as one JSON line, for the contract test (tests/contract/validate.py checks
 * each against docs/openapi.yaml): the program, method, path and query, request Content-Type
 * and Accept, status, response headers, body length and body in base64 (JSON up to 1 MiB
 * whole, else the first 64 KiB). An exchange equal to one logged before is logged once.
 */
#ifndef HTTP_CLIENT_H
#define HTTP_CLIENT_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hc_resp {
    long status;       /* HTTP status; 0 when the transfer failed (err says why) */
    char *body;        /* malloc'ed, NUL-terminated (also when empty) */
    size_t len;
    char *hdrs;        /* the final response's headers: "name\0value\0" pairs (malloc) */
    size_t hdrs_len;
    char err[256];     /* transport error, "" when none */
    long new_conns;    /* connections curl opened for this request (0: reused one) */
    double seconds;    /* total time */
    long long sent;    /* request body bytes curl sent */
} hc_resp;

typedef struct hc_opts {
    long timeout_ms;       /* whole transfer; 0 means 30 s */
    long long max_send_bps;/* throttle the upload to this many bytes/s; 0 = no limit */
    bool chunked;          /* send the body with Transfer-Encoding: chunked (no length) */
    bool fresh;            /* use a new connection */
    size_t read_chunk;     /* hand the body to curl at most this many bytes at a time (with
                            * chunked, each piece is one HTTP chunk); 0 = no limit */
} hc_opts;

/*
 * One request. method: "GET", "HEAD", "POST", "PUT", ... ; headers: NULL-terminated "Name: value"
 * strings or NULL; body/len: the request body (a body is sent when body is not NULL, even
 * empty). Fills r (always; free with hc_resp_free). Returns 0 when an HTTP response arrived,
 * -1 on a transport failure (r->status 0, r->err set).
 */
int hc_request(const char *method, const char *url, const char *const *headers,
               const void *body, size_t len, hc_resp *r);
int hc_request_ex(const char *method, const char *url, const char *const *headers,
                  const void *body, size_t len, const hc_opts *opts, hc_resp *r);

/* The value of a response header (name case-insensitive), or NULL. Owned by r. */
const char *hc_header(const hc_resp *r, const char *name);

void hc_resp_free(hc_resp *r);

/* Frees the calling thread's CURL handle (and closes its connection). */
void hc_thread_done(void);

/* ---- body helpers ---- */

/* Base64 (standard alphabet, padded). Both return malloc'ed memory (the caller frees). */
char *hc_b64_encode(const void *data, size_t len);
/* NULL on a character outside the alphabet or a bad length; *out_len gets the byte count. */
unsigned char *hc_b64_decode(const char *text, size_t text_len, size_t *out_len);

/*
 * Parses JSON that may contain the tokens NaN, Infinity and -Infinity, keeping every number
 * exact: each number (or token) becomes a cJSON string holding its text, marked so that
 * hc_json_num tells it from a real string. Returns NULL when the text is not JSON or a number
 * does not follow JSON's grammar. Free with cJSON_Delete.
 */
cJSON *hc_json_parse_exact(const char *text, size_t len);
/* The text of a number node from hc_json_parse_exact ("0.5", "NaN", ...), or NULL. */
const char *hc_json_num(const cJSON *node);

/* A non-blocking TCP connection to 127.0.0.1:port, connected within 5 s, or -1. */
int hc_raw_connect(int port);

#endif
