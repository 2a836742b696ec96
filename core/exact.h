/* The order-exact min/max of one channel (see exact.c). Internal to core/. */
#ifndef QDQ_EXACT_H
#define QDQ_EXACT_H

#include "qdq.h"

/* Eigen's min and max of channel c (axis = -1: the whole tensor), widened to double. */
void qdq_exact_range(const qdq_plan *p, const void *data, uint64_t c, double *lo, double *hi);

#endif
