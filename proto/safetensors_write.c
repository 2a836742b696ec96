/*
 * The header of an answer (safetensors.h: proto_st_header_write), as the reference writer
 * writes one: compact JSON as serde_json prints it, padded with spaces to a multiple of 8.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "json_pull.h"
#include "safetensors.h"

int proto_st_json_string(proto_buf *b, const char *s, size_t n)
{
    if (proto_buf_reserve(b, n + 2))
        return PROTO_ENOMEM;
    b->data[b->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char esc[8];
        size_t k = 2;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\t': esc[1] = 't'; break;
        case '\n': esc[1] = 'n'; break;
        case '\f': esc[1] = 'f'; break;
        case '\r': esc[1] = 'r'; break;
        default: k = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c); break;
        }
        if (proto_buf_append(b, s + run, i - run) || proto_buf_append(b, esc, k))
            return PROTO_ENOMEM;
        run = i + 1;
    }
    if (proto_buf_append(b, s + run, n - run) || proto_buf_append(b, "\"", 1))
        return PROTO_ENOMEM;
    return 0;
}

static int put(proto_buf *b, const char *s)
{
    return proto_buf_append(b, s, strlen(s));
}

/* "name":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}, after a comma unless first. */
static int put_tensor(proto_buf *b, bool *first, const char *name, size_t name_len,
                      proto_st_dtype dt, const int64_t *dims, int rank, uint64_t begin,
                      uint64_t end)
{
    char num[80]; /* the longest piece: "],\"data_offsets\":[" and two 20-digit numbers */
    if ((!*first && put(b, ",")) || proto_st_json_string(b, name, name_len) ||
        put(b, ":{\"dtype\":\"") ||
        put(b, proto_st_dtype_name(dt)) || put(b, "\",\"shape\":["))
        return PROTO_ENOMEM;
    for (int i = 0; i < rank; i++) {
        int k = snprintf(num, sizeof num, "%s%" PRId64, i ? "," : "", dims[i]);
        if (proto_buf_append(b, num, (size_t)k))
            return PROTO_ENOMEM;
    }
    int k = snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", begin,
                     end);
    *first = false;
    return proto_buf_append(b, num, (size_t)k);
}

static int write_header(const proto_st_header *h, const char *policy_json,
                        const proto_st_extra *extra, size_t n_extra, proto_buf *b, size_t start,
                        qdq_error *err)
{
    const size_t klen = strlen(PROTO_ST_POLICY_KEY);
    char s[48];
    if (proto_buf_append(b, "\0\0\0\0\0\0\0\0{", 9))
        return PROTO_ENOMEM;
    bool first = true; /* the next member goes without a comma */
    if (h->has_meta || policy_json) {
        bool replaced = false;
        if (put(b, "\"__metadata__\":{"))
            return PROTO_ENOMEM;
        for (size_t i = 0; i < h->n_meta; i++) {
            const proto_st_meta *m = &h->meta[i];
            bool ours = policy_json && m->key_len == klen && !memcmp(m->key, PROTO_ST_POLICY_KEY,
                                                                     klen);
            if ((i && put(b, ",")) || proto_st_json_string(b, m->key, m->key_len) || put(b, ":") ||
                (ours ? proto_st_json_string(b, policy_json, strlen(policy_json))
                      : proto_st_json_string(b, m->value, m->value_len)))
                return PROTO_ENOMEM;
            replaced |= ours;
        }
        if (policy_json && !replaced &&
            ((h->n_meta && put(b, ",")) || proto_st_json_string(b, PROTO_ST_POLICY_KEY, klen) ||
             put(b, ":") || proto_st_json_string(b, policy_json, strlen(policy_json))))
            return PROTO_ENOMEM;
        if (put(b, "}"))
            return PROTO_ENOMEM;
        first = false;
    }
    for (size_t i = 0; i < h->n_tensors; i++) {
        const proto_st_tensor *t = &h->tensors[i];
        if (put_tensor(b, &first, t->name, t->name_len, t->dtype, t->dims, t->rank, t->begin,
                       t->end))
            return PROTO_ENOMEM;
    }
    uint64_t off = h->data_len;
    for (size_t i = 0; i < n_extra; i++) {
        const proto_st_extra *x = &extra[i];
        uint64_t bytes;
        if (proto_st_has_name(h, x->name))
            return qdq_fail(err, QDQ_EINVAL, "the tensor '%s' to be added is already in the "
                            "checkpoint", proto_printable(s, x->name, strlen(x->name)));
        if (proto_st_bytes(x->dtype, x->dims, x->rank, NULL, &bytes) ||
            bytes > UINT64_MAX - off)
            return qdq_fail(err, QDQ_EINVAL, "the tensor '%s' to be added has a bad dtype or "
                            "shape, or its data would end past 2^64 bytes",
                            proto_printable(s, x->name, strlen(x->name)));
        if (put_tensor(b, &first, x->name, strlen(x->name), x->dtype, x->dims, x->rank, off,
                       off + bytes))
            return PROTO_ENOMEM;
        off += bytes;
    }
    if (put(b, "}"))
        return PROTO_ENOMEM;
    size_t n = b->len - start - 8;
    while (n % 8) {
        if (put(b, " "))
            return PROTO_ENOMEM;
        n++;
    }
    if (n > PROTO_ST_MAX_HEADER)
        return qdq_fail(err, PROTO_ETOOBIG, "the answer's safetensors header would be %zu "
                        "bytes, over the format's limit of %u", n, PROTO_ST_MAX_HEADER);
    for (int i = 0; i < 8; i++)
        b->data[start + (size_t)i] = (char)(uint8_t)((uint64_t)n >> (8 * i));
    return 0;
}

int proto_st_header_write(const proto_st_header *h, const char *policy_json,
                          const proto_st_extra *extra, size_t n_extra, proto_buf *out,
                          qdq_error *err)
{
    size_t start = out->len;
    int rc = write_header(h, policy_json, extra, n_extra, out, start, err);
    if (rc) {
        out->len = start;
        if (rc == PROTO_ENOMEM)
            qdq_fail(err, PROTO_ENOMEM, "out of memory for the answer's safetensors header");
    }
    return rc;
}
