/* Responses: the status table, error bodies, tensor bodies in each format, and queueing. */
#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

int srv_http_status(int code)
{
    switch (code) {
    case QDQ_OK: return 200;
    case QDQ_EINVAL: return 400;
    case PROTO_ETOOBIG: return 413;
    case PROTO_EMEDIA: return 415;
    case PROTO_ENOMEM: return 503;
    default: return 500;
    }
}

/* The protocol's word for an HTTP status, as the optional "code" of error bodies. */
static const char *status_code_name(int status)
{
    switch (status) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 404: return "NOT_FOUND";
    case 405: return "METHOD_NOT_ALLOWED";
    case 411: return "LENGTH_REQUIRED";
    case 413: return "RESOURCE_EXHAUSTED";
    case 415: return "UNSUPPORTED_MEDIA_TYPE";
    case 503: return "UNAVAILABLE";
    default: return "INTERNAL";
    }
}

static void body_reset(srv_req *r)
{
    if (r->body) {
        if (r->body_free)
            r->body_free(r->body_free_cls);
        else
            free(r->body);
    }
    r->body = NULL;
    r->body_len = 0;
    r->body_free = NULL;
    r->body_free_cls = NULL;
}

void srv_req_header(srv_req *r, const char *name, const char *value, size_t value_len)
{
    proto_buf_append(&r->hdrs, name, strlen(name));
    proto_buf_append(&r->hdrs, ": ", 2);
    proto_buf_append(&r->hdrs, value, value_len);
    proto_buf_append(&r->hdrs, "\n", 1);
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

void srv_req_fail(srv_req *r, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    utf8_sanitize(msg);
    body_reset(r);
    r->hdrs.len = 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    cJSON_AddStringToObject(o, "code", status_code_name(status));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    r->status = status;
    r->ctype = "application/json";
    if (text) {
        size_t n = strlen(text);
        r->body = text; /* cJSON allocates with malloc: free() releases it */
        r->body_len = n;
    }
    if (status == 405 && r->route)
        srv_req_header(r, "Allow", r->route->allow, strlen(r->route->allow));
    if (status == 503)
        srv_req_header(r, "Retry-After", "1", 1);
}

/* Returns a tensor buffer to the cache when its response has been sent. */
static void buf_release(void *cls)
{
    void **pc = cls;
    srv_buf_put(pc[0], (size_t)(uintptr_t)pc[1]);
    free(pc);
}

/*
 * X-QDQ-Dtype, X-QDQ-Shape and the six per-channel range headers. libmicrohttpd builds response
 * headers in the connection's memory (--max-header-bytes): ranges that would not fit in half
 * of it are left out, and X-QDQ-Ranges-Omitted says why and how to get them.
 */
static int ranges_headers(srv_req *r)
{
    static const char *const names[6] = { "X-QDQ-Input-Min", "X-QDQ-Input-Max",
                                          "X-QDQ-Output-Min", "X-QDQ-Output-Max",
                                          "X-QDQ-Scale", "X-QDQ-Inverse-Scale" };
    proto_buf b[6] = { { 0 } }, shape = { 0 };
    const char *dt = qdq_dtype_name(r->preq.dtype);
    srv_req_header(r, "X-QDQ-Dtype", dt, strlen(dt));
    int rc = proto_shape_format(&r->preq, &shape);
    size_t total = 0;
    for (int k = 0; k < 6 && !rc; k++) {
        rc = proto_ranges_format(&r->plan, r->params, k, &b[k]);
        total += b[k].len + strlen(names[k]) + 4;
    }
    if (!rc) {
        srv_req_header(r, "X-QDQ-Shape", shape.data ? shape.data : "", shape.len);
        if (total <= r->s->cfg->max_header_bytes / 2) {
            for (int k = 0; k < 6; k++)
                srv_req_header(r, names[k], b[k].data ? b[k].data : "", b[k].len);
        } else {
            char why[160];
            int n = snprintf(why, sizeof why, "%llu channels need %zu bytes of headers; ask with "
                             "Accept: application/json", (unsigned long long)r->plan.channels,
                             total);
            srv_req_header(r, "X-QDQ-Ranges-Omitted", why, (size_t)n);
        }
    }
    proto_buf_free(&shape);
    for (int k = 0; k < 6; k++)
        proto_buf_free(&b[k]);
    if (rc) {
        srv_req_fail(r, 503, "out of memory formatting the response headers");
        return -1;
    }
    return 0;
}

int srv_req_respond_tensor(srv_req *r)
{
    char *data = r->tbase + SRV_TENSOR_OFF;
    if (r->want_json || r->fmt == SRV_FMT_JSON) {
        proto_buf b = { 0 };
        qdq_error err = { 0 };
        if (r->fmt != SRV_FMT_JSON)
            r->preq.form = PROTO_FORM_DATA;
        int rc = proto_json_encode(&r->preq, &r->plan, r->params, data, &b, &err);
        if (rc) {
            proto_buf_free(&b);
            srv_req_fail(r, srv_http_status(rc), "%s", err.msg);
            return -1;
        }
        body_reset(r);
        r->body = proto_buf_detach(&b, &r->body_len);
        r->status = 200;
        r->ctype = "application/json";
        return 0;
    }
    if (ranges_headers(r))
        return -1;
    char *start = data;
    size_t len = r->tlen;
    if (r->fmt == SRV_FMT_NPY) {
        proto_buf h = { 0 };
        if (proto_npy_header_write(&r->preq, &h) || h.len > SRV_TENSOR_OFF) {
            proto_buf_free(&h);
            srv_req_fail(r, 500, "npy header does not fit");
            return -1;
        }
        start = data - h.len;
        memcpy(start, h.data, h.len);
        len += h.len;
        proto_buf_free(&h);
        r->ctype = "application/x-npy";
    } else {
        r->ctype = "application/octet-stream";
    }
    if (srv_req_body_from_buffer(r, start, len))
        return -1;
    r->status = 200;
    return 0;
}

int srv_req_body_from_buffer(srv_req *r, char *start, size_t len)
{
    /* The response takes the tensor buffer; it goes back to the cache when sent. */
    void **pc = malloc(2 * sizeof(void *));
    if (!pc) {
        srv_req_fail(r, 503, "out of memory");
        return -1;
    }
    pc[0] = r->tbase;
    pc[1] = (void *)(uintptr_t)r->tcap;
    body_reset(r);
    r->body = start;
    r->body_len = len;
    r->body_free = buf_release;
    r->body_free_cls = pc;
    r->tbase = NULL;
    r->tcap = 0;
    return 0;
}

enum MHD_Result srv_req_queue(srv_req *r)
{
    struct MHD_Response *resp;
    if (r->ctype && strcmp(r->ctype, "application/json") == 0 && r->status == 200)
        srv_compress_response(r, r->accept_encoding);
    if (r->body_free)
        resp = MHD_create_response_from_buffer_with_free_callback_cls(
            r->body_len, r->body, (MHD_ContentReaderFreeCallback)r->body_free, r->body_free_cls);
    else
        resp = MHD_create_response_from_buffer_with_free_callback(r->body_len, r->body, free);
    if (!resp)
        return MHD_NO;
    r->body = NULL; /* the response owns it now */
    r->body_free = NULL;
    if (r->ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    /* libmicrohttpd refuses empty header values; a lone space reads back as empty. */
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    /* Extra headers, "Name: value\n" lines. */
    char *p = r->hdrs.data, *end = p + r->hdrs.len;
    while (p && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *colon = memchr(p, ':', (size_t)(nl - p));
        *nl = '\0';
        *colon = '\0';
        MHD_add_response_header(resp, p, colon[2] ? colon + 2 : " ");
        p = nl + 1;
    }
    if (atomic_load(&r->s->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r->bytes_out = r->body_len;
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->done = true;
    return ok;
}
