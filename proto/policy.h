/*
 * The policy of a whole checkpoint (docs/api.md, "Whole checkpoints"): which tensors are
 * quantized, and with which attributes. Pure: the server and the qdq command hand it their
 * query arguments or flags and the rules' text, then ask it about each tensor of the header.
 *
 * In order:
 *   1. defaults: the op's attributes (num_bits, signed_input, range_given, input_min,
 *      input_max, round_mode, narrow_range, axis), parsed as the raw route parses its query
 *      (proto_query_arg: the same syntax and messages); TensorFlow's defaults otherwise;
 *   2. include / exclude: comma-separated fnmatch(3) globs on the tensor's name, flags 0 (so
 *      '*' crosses dots and slashes); default include "*", exclude nothing. A float tensor is
 *      selected when it matches an include and no exclude;
 *   3. rules: a JSON array, first match wins, each {"match": GLOB or [GLOB, ...], "skip": true}
 *      or {"match": ..., attributes as in native JSON}. A selected tensor that matches a rule is
 *      skipped, or gets the defaults overridden by the rule's attributes.
 * Only F32, F64, F16 and BF16 tensors can be quantized; every other dtype passes through.
 *
 * Names are matched as C strings: a name holding NUL ("\u0000") is matched up to it. Rules
 * are numbered from 0, as indices of the array ("rules[2]"), in every message and reason.
 */
#ifndef PROTO_POLICY_H
#define PROTO_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"
#include "safetensors.h"

typedef struct proto_policy proto_policy;

/* What proto_policy_arg returns for a key that is not the policy's (nothing recorded). */
#define PROTO_POLICY_NOT_MINE (-1)

/* A policy of TensorFlow's defaults, every float tensor included; NULL when out of memory. */
proto_policy *proto_policy_new(void);
void proto_policy_free(proto_policy *p);

/*
 * One argument (a query parameter, percent-decoded, or a command-line flag's value): the
 * attributes as proto_query_arg reads them (input_min/input_max stay text until a tensor's
 * dtype is known), include and exclude (comma-separated globs, UTF-8; an empty item or one
 * ending in a lone backslash is an error, an empty exclude means none; a glob cannot hold a
 * comma here, though it can in a rule), rules (proto_policy_rules on the value). A key given
 * twice is an error. 0; PROTO_POLICY_NOT_MINE for any other key (dtype, shape, ranges...: the
 * caller's); else a failure recorded in err (QDQ_EINVAL, PROTO_ENOMEM).
 */
int proto_policy_arg(proto_policy *p, const char *key, const char *value, qdq_error *err);

/*
 * The rules: a JSON array of rule objects (the X-QDQ-Rules header, the "rules" query
 * parameter, or the file of qdq --rules), read with the pull reader. "match" is required (a
 * non-empty glob, or a non-empty array of them); "skip" (a boolean) cannot come with
 * attributes; attributes are typed as in native JSON (num_bits and axis integers,
 * signed_input, range_given and narrow_range booleans, round_mode "HALF_TO_EVEN" or "HALF_UP",
 * input_min and input_max a number or an array of numbers, read once a tensor's dtype is known,
 * straight to it). Unknown and duplicate keys are errors; messages name the rule ("rules[2]")
 * and the byte. Rules may be given once. 0, or QDQ_EINVAL / PROTO_ENOMEM in err.
 */
int proto_policy_rules(proto_policy *p, const char *json, size_t len, qdq_error *err);

typedef enum proto_act {
    PROTO_ACT_PASS = 0, /* not a float dtype: the bytes pass through */
    PROTO_ACT_SKIP,     /* a float tensor the policy leaves out: the bytes pass through */
    PROTO_ACT_QUANTIZE,
} proto_act;

/* "passthrough", "skipped", "quantized" (the report's words). */
const char *proto_act_name(proto_act act);

typedef struct proto_action {
    proto_act act;
    int rule;          /* the index of the rule that matched, -1 when none did */
    char reason[192];  /* PASS and SKIP: why, e.g. "excluded by '*norm*'"; else "" */
    /* QUANTIZE: the op's request without data: dtype, rank, dims, count, attrs, and when
     * range_given the bounds in the dtype (min/max, n_min/n_max; owned), ready for proto_plan
     * and qdq_params_given. Otherwise as proto_request_init leaves it. */
    proto_request req;
} proto_action;

/*
 * The action for one tensor of a header. out is overwritten (not freed). A rule or default
 * that cannot apply to a selected tensor is QDQ_EINVAL naming the tensor and the rule's index
 * (or "the defaults"): an axis not below its rank, range_given without input_min or input_max,
 * bounds of the wrong count for the axis (one value with axis -1, one per channel otherwise),
 * NaN bounds or input_min > input_max, bounds out of the dtype's range, any attribute
 * qdq_plan_init refuses for its shape; more channels than lim->max_elements (when nonzero) is
 * PROTO_ETOOBIG, as proto_plan says. Cheap: call it for every tensor as soon as the header is
 * read (nothing is computed for a checkpoint whose policy is wrong), and again for a tensor
 * when its data arrives rather than keeping every action. 0, or the failure (out cleared).
 */
int proto_policy_resolve(const proto_policy *p, const proto_st_tensor *t, const proto_limits *lim,
                         proto_action *out, qdq_error *err);

/* Frees the bounds and leaves a PASS action. */
void proto_action_clear(proto_action *a);

/*
 * The resolved attributes of a quantized tensor as compact JSON: {"num_bits":8,
 * "signed_input":true,"range_given":false,"round_mode":"HALF_TO_EVEN","narrow_range":false,
 * "axis":-1}, with "input_min" and "input_max" when range_given (a number when axis is -1,
 * else an array), printed shortest for the dtype as every JSON answer prints numbers (1.0,
 * NaN, Infinity). "null" for an action that is not QUANTIZE.
 * Appends to out. 0, or PROTO_ENOMEM.
 */
int proto_policy_attrs_json(const proto_action *a, proto_buf *out);

/*
 * The policy as given, compact JSON: the default attributes (as above; input_min/input_max
 * when given, as numbers, arrays when comma-separated), "include" and "exclude" (arrays of the
 * globs), "rules" (the array as given, white space outside strings removed; [] when none).
 * Appends to out. 0, or PROTO_ENOMEM.
 */
int proto_policy_json(const proto_policy *p, proto_buf *out);

#endif
