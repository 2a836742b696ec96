/* Answers: error bodies from the status table, and queueing on a connection (respond.h). */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "encoding.h"
#include "respond.h"
#include "status.h"

void srv_answer_clear(srv_answer *ans)
{
    proto_answer_clear(&ans->a);
    ans->status = 0;
}

/* Replaces every byte that is not part of valid UTF-8 (or is a control character) with '?':
 * messages quote what clients sent, and the JSON error body must stay valid. */
static void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = *p >= 0x20 ? proto_utf8_len(p, SIZE_MAX) : 0;
        if (n)
            p += n;
        else
            *p++ = '?';
    }
}

void srv_answer_error(srv_answer *ans, const qdq_error *err, const char *allow)
{
    char msg[sizeof err->msg];
    memcpy(msg, err->msg, sizeof msg);
    msg[sizeof msg - 1] = '\0';
    utf8_sanitize(msg);
    srv_answer_clear(ans);
    int code = err->code ? err->code : PROTO_EINTERNAL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    cJSON_AddStringToObject(o, "code", proto_status_word(code));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    ans->status = proto_status_http(code);
    ans->a.ctype = "application/json";
    if (text) { /* cJSON allocates with malloc: free() releases it */
        ans->a.body = text;
        ans->a.len = strlen(text);
    }
    if (ans->status == 405 && allow)
        proto_answer_header(&ans->a, "Allow", allow, strlen(allow));
    if (proto_status_retry(code))
        proto_answer_header(&ans->a, "Retry-After", "1", 1);
}

void srv_answer_json(srv_answer *ans, const char *text)
{
    srv_answer_clear(ans);
    ans->status = 200;
    ans->a.ctype = "application/json";
    ans->a.body = strdup(text);
    ans->a.len = ans->a.body ? strlen(text) : 0;
}

enum MHD_Result srv_answer_queue(struct MHD_Connection *conn, srv_answer *ans,
                                 const srv_send *how, uint64_t *bytes_out)
{
    proto_answer *a = &ans->a;
    char *z = NULL;
    size_t zlen = 0;
    const char *enc = NULL;
    if (ans->status == 200 && a->ctype && strcmp(a->ctype, "application/json") == 0 &&
        !a->release)
        enc = srv_compress(how->accept_encoding, a->body, a->len, &z, &zlen);
    if (enc) {
        free(a->body);
        a->body = z;
        a->len = zlen;
        proto_answer_header(a, "Content-Encoding", enc, strlen(enc));
        proto_answer_header(a, "Vary", "Accept-Encoding", 15);
    }
    struct MHD_Response *resp;
    if (a->from_file) /* sent with sendfile where libmicrohttpd can (not through TLS) */
        resp = MHD_create_response_from_fd64(a->file_len, a->fd);
    else if (a->release)
        resp = MHD_create_response_from_buffer_with_free_callback_cls(
            a->len, a->body, (MHD_ContentReaderFreeCallback)a->release, a->release_cls);
    else
        resp = MHD_create_response_from_buffer_with_free_callback(a->len, a->body, free);
    if (!resp)
        return MHD_NO;
    a->body = NULL; /* the response owns it now */
    a->release = NULL;
    a->from_file = false;
    if (a->ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->ctype);
    MHD_add_response_header(resp, "X-Request-Id", how->request_id);
    /* Extra headers, "Name: value\n" lines. libmicrohttpd refuses empty header values; a lone
     * space reads back as empty. */
    char *p = a->headers.data, *end = p + a->headers.len;
    while (p && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *colon = memchr(p, ':', (size_t)(nl - p));
        *nl = '\0';
        *colon = '\0';
        MHD_add_response_header(resp, p, colon[2] ? colon + 2 : " ");
        p = nl + 1;
    }
    if (how->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    *bytes_out = a->file_len ? a->file_len : a->len;
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)ans->status, resp);
    MHD_destroy_response(resp);
    return ok;
}
