/* proto_buf, proto_request lifecycle, dtype names and the printable form of client text. */
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int proto_buf_reserve(proto_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return PROTO_ENOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return PROTO_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int proto_buf_append(proto_buf *b, const void *p, size_t n)
{
    if (n == 0) /* memcpy may not take a buffer not yet allocated, even for 0 bytes */
        return 0;
    if (proto_buf_reserve(b, n))
        return PROTO_ENOMEM;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

char *proto_buf_detach(proto_buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    memset(b, 0, sizeof *b);
    return p;
}

void proto_buf_free(proto_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void proto_request_init(proto_request *req)
{
    static const qdq_attrs defaults = QDQ_ATTRS_DEFAULT;
    memset(req, 0, sizeof *req);
    req->dtype = QDQ_FLOAT32;
    req->attrs = defaults;
    req->count = 1;
}

void proto_request_clear(proto_request *req)
{
    if (!req->data_borrowed)
        free(req->data);
    free(req->min);
    free(req->max);
    free(req->min_text);
    free(req->max_text);
    proto_request_init(req);
}

int proto_dtype_parse(const char *s, size_t n, qdq_dtype *out)
{
    static const struct { const char *name; qdq_dtype dt; } names[] = {
        { "float32", QDQ_FLOAT32 }, { "float64", QDQ_FLOAT64 }, { "float16", QDQ_FLOAT16 },
        { "half", QDQ_FLOAT16 },    { "bfloat16", QDQ_BFLOAT16 }, { "FP32", QDQ_FLOAT32 },
        { "FP64", QDQ_FLOAT64 },    { "FP16", QDQ_FLOAT16 },    { "BF16", QDQ_BFLOAT16 },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0) {
            *out = names[i].dt;
            return 0;
        }
    return QDQ_EINVAL;
}

const char *proto_dtype_kserve(qdq_dtype dtype)
{
    static const char *const names[] = { "FP32", "FP64", "FP16", "BF16" };
    return (unsigned)dtype < 4 ? names[dtype] : NULL;
}

size_t proto_utf8_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xc2 || c > 0xf4)
        return 0;
    size_t n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (avail < n)
        return 0;
    unsigned lo = 0x80, hi = 0xbf; /* the second byte's range */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f; /* no surrogates */
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f; /* nothing above U+10FFFF */
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if ((s[k] & 0xc0) != 0x80)
            return 0;
    return n;
}

bool proto_parse_length(const char *v, uint64_t *out)
{
    uint64_t n = 0;
    if (!*v)
        return false;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    *out = n;
    return true;
}

const char *proto_printable(char *buf, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < 40; i++)
        buf[k++] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'' ? s[i] : '?';
    if (n > 40)
        memcpy(buf + k, "...", 3), k += 3;
    buf[k] = 0;
    return buf;
}
