#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "qdq_half.h"

double tu_load(qdq_dtype dt, const void *a, size_t i)
{
    switch (dt) {
    case QDQ_FLOAT32: return ((const float *)a)[i];
    case QDQ_FLOAT64: return ((const double *)a)[i];
    case QDQ_FLOAT16: return qdq_f16_to_f32(((const uint16_t *)a)[i]);
    case QDQ_BFLOAT16: return qdq_bf16_to_f32(((const uint16_t *)a)[i]);
    }
    return NAN;
}

void tu_store(qdq_dtype dt, void *a, size_t i, double v)
{
    switch (dt) {
    case QDQ_FLOAT32: ((float *)a)[i] = (float)v; break;
    case QDQ_FLOAT64: ((double *)a)[i] = v; break;
    case QDQ_FLOAT16: ((uint16_t *)a)[i] = qdq_f64_to_f16(v); break;
    case QDQ_BFLOAT16: ((uint16_t *)a)[i] = qdq_f64_to_bf16(v); break;
    }
}

bool tu_same_f32(float a, float b)
{
    return (isnan(a) && isnan(b)) || qdq_f32_bits(a) == qdq_f32_bits(b);
}

bool tu_same_f64(double a, double b)
{
    return (isnan(a) && isnan(b)) || qdq_f64_bits(a) == qdq_f64_bits(b);
}

bool tu_same(qdq_dtype dt, const void *a, const void *b, size_t i)
{
    switch (dt) {
    case QDQ_FLOAT32: return tu_same_f32(((const float *)a)[i], ((const float *)b)[i]);
    case QDQ_FLOAT64: return tu_same_f64(((const double *)a)[i], ((const double *)b)[i]);
    default: {
        double x = tu_load(dt, a, i), y = tu_load(dt, b, i);
        return (isnan(x) && isnan(y)) || ((const uint16_t *)a)[i] == ((const uint16_t *)b)[i];
    }
    }
}

qdq_dtype tu_dtype(const char *s)
{
    if (!strcmp(s, "float32") || !strcmp(s, "FP32"))
        return QDQ_FLOAT32;
    if (!strcmp(s, "float64") || !strcmp(s, "FP64"))
        return QDQ_FLOAT64;
    if (!strcmp(s, "float16") || !strcmp(s, "half") || !strcmp(s, "FP16"))
        return QDQ_FLOAT16;
    if (!strcmp(s, "bfloat16") || !strcmp(s, "BF16"))
        return QDQ_BFLOAT16;
    return (qdq_dtype)-1;
}

const char *tu_data_path(const char *rel)
{
    static char buf[4096];
    const char *base = getenv("QDQ_TESTDATA");
    snprintf(buf, sizeof buf, "%s/%s", base && *base ? base : "tests", rel);
    return buf;
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        exit(2);
    }
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

unsigned char *tu_zcompress(const void *in, size_t n, int level, int window_bits, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

char *tu_zdecompress(const void *in, size_t n, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    inflateInit2(&z, 15 + 32); /* zlib or gzip */
    size_t cap = n * 8 + 1024;
    char *out = malloc(cap + 1);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    int rc;
    do {
        if (z.total_out == cap) {
            cap *= 2;
            out = realloc(out, cap + 1);
        }
        z.next_out = (Bytef *)out + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out);
        rc = inflate(&z, Z_NO_FLUSH);
    } while (rc == Z_OK || (rc == Z_BUF_ERROR && z.avail_out == 0));
    *out_len = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    out[*out_len] = '\0';
    return out;
}

const char *const tu_range_keys[6] = { "input_min",  "input_max", "output_min",
                                       "output_max", "scale",     "inverse_scale" };

void tu_range_values(const qdq_range *r, double v[6])
{
    v[0] = r->input_min, v[1] = r->input_max, v[2] = r->output_min, v[3] = r->output_max;
    v[4] = r->scale, v[5] = r->inverse_scale;
}
