/* Exact 1-D Wasserstein-1 distances for SWD without sorting (optional C extension of progan_zoo.metrics.swd).
 *
 * For two sets of equal total weight n, sum_i |a_(i) - b_(i)| (the official sort-and-subtract formula, times n)
 * equals the integral of |D(x)| with D(x) = #{a <= x} - #{b <= x}. The range is cut into buckets; one pass
 * gathers per bucket the element counts, weights and value sums of both sets. Where D keeps its sign over a
 * bucket (the count before it exceeds what the bucket can remove), the integral over the bucket is closed
 * form: D0 * width + sum_a (e1 - a) - sum_b (e1 - b). Only the buckets where D can change sign are refined,
 * recursively, on their own elements; at a few elements they are sorted and swept. The result is the same
 * number as sorting, up to float64 rounding of the sums (the inputs are float32 projections).
 *
 * swd.py uses it for levels with repeated patches (their counts are the weights); on rows without repeats
 * NumPy's SIMD sort measured faster on peaked projections (docs/metrics.md), and only l1_rows is used there.
 *
 * Plain C99 and the CPython API; no compiler-specific flags. The GIL is released while computing, so Python
 * worker threads run rows in parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define SMALL 48 /* at most this many elements: sort and sweep */

typedef struct {
    double total;
    int failed; /* out of memory */
} acc_t;

typedef struct { /* one bucket: element counts, weights, value sums of both sets */
    uint32_t na, nb;
    int64_t wa, wb;
    double sa, sb;
} bucket_t;

static void sort_pairs(double *v, int64_t *w, long n) {
    for (long i = 1; i < n; i++) { /* insertion sort: n <= SMALL */
        double x = v[i];
        int64_t y = w[i];
        long j = i - 1;
        while (j >= 0 && v[j] > x) { v[j + 1] = v[j]; w[j + 1] = w[j]; j--; }
        v[j + 1] = x;
        w[j + 1] = y;
    }
}

/* integral over [e0, e1] of |D| given D(e0) = d0 and the sorted elements of both sets in that interval */
static double sweep(const double *va, const int64_t *wa, long na, const double *vb, const int64_t *wb, long nb,
                    double e0, double e1, int64_t d0) {
    double x = e0, s = 0.0;
    int64_t d = d0;
    long i = 0, j = 0;
    while (i < na || j < nb) {
        double v;
        if (j >= nb || (i < na && va[i] <= vb[j])) { v = va[i]; s += (double)llabs(d) * (v - x); d += wa[i++]; }
        else { v = vb[j]; s += (double)llabs(d) * (v - x); d -= wb[j++]; }
        x = v;
    }
    return s + (double)llabs(d) * (e1 - x);
}

static void resolve(double *va, int64_t *wa, long na, double *vb, int64_t *wb, long nb, double e0, double e1,
                    int64_t d0, acc_t *acc);

/* Closed form for the buckets where D keeps its sign; returns the number of crossing buckets and marks them
 * in slot[] (their index among crossing buckets, or -1), storing their left edge and D there. */
static long classify(const bucket_t *h, long k, const double *edges, int64_t d0, acc_t *acc,
                     int32_t *slot, double *cross_e0, double *cross_e1, int64_t *cross_d) {
    int64_t d = d0;
    long nc = 0;
    double s = 0.0;
    for (long i = 0; i < k; i++) {
        double e0 = edges[i], e1 = edges[i + 1];
        const bucket_t *b = &h[i];
        slot[i] = -1;
        if (b->na == 0 && b->nb == 0) {
            s += (double)llabs(d) * (e1 - e0);
        } else if (d - b->wb >= 0 || d + b->wa <= 0) {
            double area = (double)d * (e1 - e0) + (double)(b->wa - b->wb) * e1 - (b->sa - b->sb);
            s += d - b->wb >= 0 ? area : -area;
        } else {
            slot[i] = (int32_t)nc;
            cross_e0[nc] = e0;
            cross_e1[nc] = e1;
            cross_d[nc] = d;
            nc++;
        }
        d += b->wa - b->wb;
    }
    acc->total += s;
    return nc;
}

static long pick_buckets(long n, long cap) {
    long k = 16;
    while (k < cap && 4 * k < n) k *= 2;
    return k;
}

static inline long sub_bucket(double v, double lo, double scale, long k) {
    long i = (long)((v - lo) * scale);
    return i < 0 ? 0 : (i >= k ? k - 1 : i);
}

/* One refinement level over double values with weights (the elements of one crossing bucket). */
static void resolve(double *va, int64_t *wa, long na, double *vb, int64_t *wb, long nb, double e0, double e1,
                    int64_t d0, acc_t *acc) {
    if (na + nb <= SMALL) {
        sort_pairs(va, wa, na);
        sort_pairs(vb, wb, nb);
        acc->total += sweep(va, wa, na, vb, wb, nb, e0, e1, d0);
        return;
    }
    double lo = INFINITY, hi = -INFINITY;
    int64_t ta = 0, tb = 0;
    for (long i = 0; i < na; i++) { lo = va[i] < lo ? va[i] : lo; hi = va[i] > hi ? va[i] : hi; ta += wa[i]; }
    for (long i = 0; i < nb; i++) { lo = vb[i] < lo ? vb[i] : lo; hi = vb[i] > hi ? vb[i] : hi; tb += wb[i]; }
    if (!(hi > lo)) { /* every element at one point */
        acc->total += (double)llabs(d0) * (lo - e0) + (double)llabs(d0 + ta - tb) * (e1 - lo);
        return;
    }
    acc->total += (double)llabs(d0) * (lo - e0) + (double)llabs(d0 + ta - tb) * (e1 - hi);
    long k = pick_buckets(na + nb, 4096);
    double width = (hi - lo) / (double)k, scale = (double)k / (hi - lo);
    bucket_t *h = calloc((size_t)k, sizeof(bucket_t));
    int32_t *slot = malloc((size_t)k * sizeof(int32_t));
    double *ce0 = malloc((size_t)k * sizeof(double)), *ce1 = malloc((size_t)k * sizeof(double));
    int64_t *cd = malloc((size_t)k * sizeof(int64_t));
    double *edges = malloc(((size_t)k + 1) * sizeof(double));
    if (!h || !slot || !ce0 || !ce1 || !cd || !edges) { acc->failed = 1; goto done; }
    for (long i = 0; i < k; i++) edges[i] = lo + (double)i * width;
    edges[k] = hi;
    for (long i = 0; i < na; i++) { bucket_t *b = &h[sub_bucket(va[i], lo, scale, k)]; b->na++; b->wa += wa[i]; b->sa += (double)wa[i] * va[i]; }
    for (long i = 0; i < nb; i++) { bucket_t *b = &h[sub_bucket(vb[i], lo, scale, k)]; b->nb++; b->wb += wb[i]; b->sb += (double)wb[i] * vb[i]; }
    long nc = classify(h, k, edges, d0, acc, slot, ce0, ce1, cd);
    if (nc) {
        /* gather the crossing buckets' elements, bucket after bucket */
        long *oa = calloc((size_t)nc + 1, sizeof(long)), *ob = calloc((size_t)nc + 1, sizeof(long));
        double *ga = malloc(((size_t)na + 1) * sizeof(double)), *gb = malloc(((size_t)nb + 1) * sizeof(double));
        int64_t *gwa = malloc(((size_t)na + 1) * sizeof(int64_t)), *gwb = malloc(((size_t)nb + 1) * sizeof(int64_t));
        if (!oa || !ob || !ga || !gb || !gwa || !gwb) { acc->failed = 1; }
        else {
            for (long i = 0; i < k; i++) if (slot[i] >= 0) { oa[slot[i] + 1] = h[i].na; ob[slot[i] + 1] = h[i].nb; }
            for (long c = 0; c < nc; c++) { oa[c + 1] += oa[c]; ob[c + 1] += ob[c]; }
            long *pa = malloc((size_t)nc * sizeof(long)), *pb = malloc((size_t)nc * sizeof(long));
            if (!pa || !pb) acc->failed = 1;
            else {
                memcpy(pa, oa, (size_t)nc * sizeof(long));
                memcpy(pb, ob, (size_t)nc * sizeof(long));
                for (long i = 0; i < na; i++) { int32_t s = slot[sub_bucket(va[i], lo, scale, k)]; if (s >= 0) { ga[pa[s]] = va[i]; gwa[pa[s]++] = wa[i]; } }
                for (long i = 0; i < nb; i++) { int32_t s = slot[sub_bucket(vb[i], lo, scale, k)]; if (s >= 0) { gb[pb[s]] = vb[i]; gwb[pb[s]++] = wb[i]; } }
                for (long c = 0; c < nc && !acc->failed; c++)
                    resolve(ga + oa[c], gwa + oa[c], oa[c + 1] - oa[c], gb + ob[c], gwb + ob[c], ob[c + 1] - ob[c],
                            ce0[c], ce1[c], cd[c], acc);
            }
            free(pa);
            free(pb);
        }
        free(oa); free(ob); free(ga); free(gb); free(gwa); free(gwb);
    }
done:
    free(h); free(slot); free(ce0); free(ce1); free(cd); free(edges);
}

typedef struct { /* one top-level bucket of one set: elements, weight, value sum */
    uint32_t n;
    int32_t w;
    double s;
} half_t;

static void min_max(const float *x, long n, float *lo, float *hi) {
    float mn[8], mx[8];
    for (int j = 0; j < 8; j++) { mn[j] = INFINITY; mx[j] = -INFINITY; }
    long i = 0;
    for (; i + 8 <= n; i += 8) /* eight independent lanes: the compiler can use vector min/max */
        for (int j = 0; j < 8; j++) { float v = x[i + j]; mn[j] = v < mn[j] ? v : mn[j]; mx[j] = v > mx[j] ? v : mx[j]; }
    for (; i < n; i++) { mn[0] = x[i] < mn[0] ? x[i] : mn[0]; mx[0] = x[i] > mx[0] ? x[i] : mx[0]; }
    for (int j = 1; j < 8; j++) { mn[0] = mn[j] < mn[0] ? mn[j] : mn[0]; mx[0] = mx[j] > mx[0] ? mx[j] : mx[0]; }
    *lo = mn[0];
    *hi = mx[0];
}

/* Top level: uniform buckets over the joint range; a set's values are x - shift, so each set gets its own
 * bucket origin (lo + shift) and the float32 projections are read as they are. */
typedef struct {
    double scale; /* buckets per unit */
    long k;
} grid_t;

static inline long top_bucket(float x, double origin, const grid_t *g) {
    long i = (long)(((double)x - origin) * g->scale);
    return i < 0 ? 0 : (i >= g->k ? g->k - 1 : i);
}

static void histogram(const float *x, const int32_t *m, long n, double origin, const grid_t *g, long k, half_t *h) {
    memset(h, 0, (size_t)k * sizeof(half_t));
    if (m) {
        for (long i = 0; i < n; i++) { half_t *q = &h[top_bucket(x[i], origin, g)]; q->n++; q->w += m[i]; q->s += (double)m[i] * x[i]; }
    } else {
        for (long i = 0; i < n; i++) { half_t *q = &h[top_bucket(x[i], origin, g)]; q->n++; q->s += x[i]; }
        for (long i = 0; i < k; i++) h[i].w = (int32_t)h[i].n;
    }
}

/* Copy the elements of crossing buckets (slot > 0) into their segments. First a branch-free list of their
 * indices (the crossing ones are a scattered minority: a branch per element would mispredict), then the copy. */
static void gather(const float *x, const int32_t *m, long n, double shift, double origin, const grid_t *g,
                   const int32_t *slot, long *pos, double *gv, int64_t *gw, int32_t *sel) {
    long j = 0;
    for (long i = 0; i < n; i++) {
        sel[j] = (int32_t)i;
        j += slot[top_bucket(x[i], origin, g)] != 0;
    }
    for (long t = 0; t < j; t++) {
        long i = sel[t], p = pos[slot[top_bucket(x[i], origin, g)]]++;
        gv[p] = (double)x[i] - shift;
        gw[p] = m ? m[i] : 1;
    }
}

typedef struct { /* per-call scratch, reused across rows */
    long kmax, nmax;
    half_t *ha, *hb;
    bucket_t *h;
    int32_t *slot;
    double *ce0, *ce1, *ga, *gb;
    int64_t *cd, *gwa, *gwb;
    int32_t *sel;
    long *oa, *ob, *pa, *pb;
    double *edges;
} scratch_t;

/* The top level reads the float32 projections directly: value = x - shift, weight = m (or 1). */
static void w1_row(const float *a, const int32_t *ma, long na, double sa, const float *b, const int32_t *mb,
                   long nb, double sb, acc_t *acc, scratch_t *t) {
    float amin, amax, bmin, bmax;
    min_max(a, na, &amin, &amax);
    min_max(b, nb, &bmin, &bmax);
    double lo = fmin((double)amin - sa, (double)bmin - sb), hi = fmax((double)amax - sa, (double)bmax - sb);
    if (!(hi > lo)) return; /* both sets at one point: distance 0 */
    long k = pick_buckets(na + nb, t->kmax);
    double la = lo + sa, lb = lo + sb; /* bucket origin in each set's unshifted coordinate */
    grid_t grid = {(double)k / (hi - lo), k}, *g = &grid;
    double width = (hi - lo) / (double)k;
    for (long i = 0; i < k; i++) t->edges[i] = lo + (double)i * width;
    t->edges[k] = hi;
    histogram(a, ma, na, la, g, k, t->ha);
    histogram(b, mb, nb, lb, g, k, t->hb);
    bucket_t *h = t->h;
    for (long i = 0; i < k; i++) {
        h[i].na = t->ha[i].n; h[i].nb = t->hb[i].n; h[i].wa = t->ha[i].w; h[i].wb = t->hb[i].w;
        h[i].sa = t->ha[i].s - (double)h[i].wa * sa;
        h[i].sb = t->hb[i].s - (double)h[i].wb * sb;
    }
    int32_t *slot = t->slot;
    long nc = classify(h, k, t->edges, 0, acc, slot, t->ce0, t->ce1, t->cd);
    if (!nc) return;
    /* segments: slot 0 is a one-element dump, crossing bucket c has slot c + 1 */
    long *oa = t->oa, *ob = t->ob;
    oa[0] = 0; ob[0] = 0; oa[1] = 1; ob[1] = 1;
    for (long i = 0; i < k; i++) {
        if (slot[i] >= 0) { oa[slot[i] + 2] = h[i].na; ob[slot[i] + 2] = h[i].nb; slot[i] += 1; }
        else slot[i] = 0;
    }
    for (long c = 1; c <= nc; c++) { oa[c + 1] += oa[c]; ob[c + 1] += ob[c]; }
    memcpy(t->pa, oa, (size_t)(nc + 1) * sizeof(long));
    memcpy(t->pb, ob, (size_t)(nc + 1) * sizeof(long));
    gather(a, ma, na, sa, la, g, slot, t->pa, t->ga, t->gwa, t->sel);
    gather(b, mb, nb, sb, lb, g, slot, t->pb, t->gb, t->gwb, t->sel);
    for (long c = 1; c <= nc && !acc->failed; c++)
        resolve(t->ga + oa[c], t->gwa + oa[c], oa[c + 1] - oa[c], t->gb + ob[c], t->gwb + ob[c], ob[c + 1] - ob[c],
                t->ce0[c - 1], t->ce1[c - 1], t->cd[c - 1], acc);
}

/* Frees every block and clears the struct, so a second call (after a failed scratch_alloc) frees nothing twice. */
static void scratch_free(scratch_t *t) {
    free(t->ha); free(t->hb); free(t->h); free(t->slot); free(t->ce0); free(t->ce1); free(t->ga); free(t->gb);
    free(t->cd); free(t->gwa); free(t->gwb); free(t->oa); free(t->ob); free(t->pa); free(t->pb); free(t->sel);
    free(t->edges);
    memset(t, 0, sizeof *t);
}

static int scratch_alloc(scratch_t *t, long kmax, long nmax) {
    memset(t, 0, sizeof *t);
    t->kmax = kmax;
    t->nmax = nmax;
    size_t k = (size_t)kmax, n = (size_t)nmax + 1;
    t->ha = malloc(k * sizeof(half_t)); t->hb = malloc(k * sizeof(half_t)); t->h = malloc(k * sizeof(bucket_t));
    t->slot = malloc(k * sizeof(int32_t)); t->ce0 = malloc(k * sizeof(double)); t->ce1 = malloc(k * sizeof(double));
    t->cd = malloc(k * sizeof(int64_t));
    t->oa = malloc((k + 2) * sizeof(long)); t->ob = malloc((k + 2) * sizeof(long));
    t->pa = malloc((k + 2) * sizeof(long)); t->pb = malloc((k + 2) * sizeof(long));
    t->ga = malloc(n * sizeof(double)); t->gb = malloc(n * sizeof(double));
    t->gwa = malloc(n * sizeof(int64_t)); t->gwb = malloc(n * sizeof(int64_t));
    t->sel = malloc(n * sizeof(int32_t));
    t->edges = malloc((k + 1) * sizeof(double));

    if (!t->ha || !t->hb || !t->h || !t->slot || !t->ce0 || !t->ce1 || !t->cd || !t->oa || !t->ob || !t->pa ||
        !t->pb || !t->sel || !t->edges || !t->ga || !t->gb || !t->gwa || !t->gwb) {
        scratch_free(t);
        return -1;
    }
    return 0;
}

/* Top-level buckets (about 20 elements each at most): 16384 measured fastest on 2 x 180,000 values, with the
 * tables in L2; more buckets leave fewer to refine but miss the cache. */
#define TOP_BUCKETS 16384

static PyObject *w1_rows(PyObject *self, PyObject *args) {
    Py_buffer pa, pb, ma, mb, sa, sb, out;
    Py_ssize_t rows, na, nb;
    int has_ma, has_mb;
    (void)self;
    if (!PyArg_ParseTuple(args, "nnny*y*y*y*y*y*w*pp", &rows, &na, &nb, &pa, &pb, &ma, &mb, &sa, &sb, &out, &has_ma,
                          &has_mb))
        return NULL;
    PyObject *result = NULL;
    int64_t ta = has_ma ? 0 : na, tb = has_mb ? 0 : nb;
    if (pa.len != (Py_ssize_t)(rows * na * 4) || pb.len != (Py_ssize_t)(rows * nb * 4) ||
        (has_ma && ma.len != na * 4) || (has_mb && mb.len != nb * 4) || sa.len != rows * 8 || sb.len != rows * 8 ||
        out.len != rows * 8) {
        PyErr_SetString(PyExc_ValueError, "w1_rows: buffer sizes do not match rows, na, nb");
        goto done;
    }
    for (Py_ssize_t i = 0; has_ma && i < na; i++) ta += ((const int32_t *)ma.buf)[i];
    for (Py_ssize_t i = 0; has_mb && i < nb; i++) tb += ((const int32_t *)mb.buf)[i];
    if (ta != tb) {
        PyErr_SetString(PyExc_ValueError, "w1_rows: both sets need the same total weight");
        goto done;
    }
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    scratch_t t;
    failed = scratch_alloc(&t, TOP_BUCKETS, na > nb ? na : nb) != 0;
    for (Py_ssize_t r = 0; r < rows && !failed; r++) {
        acc_t acc = {0.0, 0};
        w1_row((const float *)pa.buf + r * na, has_ma ? (const int32_t *)ma.buf : NULL, na, ((const double *)sa.buf)[r],
               (const float *)pb.buf + r * nb, has_mb ? (const int32_t *)mb.buf : NULL, nb, ((const double *)sb.buf)[r],
               &acc, &t);
        failed = acc.failed;
        ((double *)out.buf)[r] = acc.total;
    }
    scratch_free(&t);
    Py_END_ALLOW_THREADS
    if (failed) PyErr_NoMemory();
    else { Py_INCREF(Py_None); result = Py_None; }
done:
    PyBuffer_Release(&pa); PyBuffer_Release(&pb); PyBuffer_Release(&ma); PyBuffer_Release(&mb);
    PyBuffer_Release(&sa); PyBuffer_Release(&sb); PyBuffer_Release(&out);
    return result;
}

/* sum_i |a_i - b_i - delta| per row of two sorted [rows, n] float32 arrays: one pass over both, in float64
 * (the NumPy path makes four passes in float32). */
static PyObject *l1_rows(PyObject *self, PyObject *args) {
    Py_buffer pa, pb, delta, out;
    Py_ssize_t rows, n;
    (void)self;
    if (!PyArg_ParseTuple(args, "nny*y*y*w*", &rows, &n, &pa, &pb, &delta, &out)) return NULL;
    PyObject *result = NULL;
    if (pa.len != rows * n * 4 || pb.len != rows * n * 4 || delta.len != rows * 8 || out.len != rows * 8) {
        PyErr_SetString(PyExc_ValueError, "l1_rows: buffer sizes do not match rows, n");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++) {
        const float *a = (const float *)pa.buf + r * n, *b = (const float *)pb.buf + r * n;
        double d = ((const double *)delta.buf)[r], s[4] = {0.0, 0.0, 0.0, 0.0};
        Py_ssize_t i = 0;
        for (; i + 4 <= n; i += 4)
            for (int j = 0; j < 4; j++) s[j] += fabs((double)a[i + j] - (double)b[i + j] - d);
        for (; i < n; i++) s[0] += fabs((double)a[i] - (double)b[i] - d);
        ((double *)out.buf)[r] = (s[0] + s[1]) + (s[2] + s[3]);
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&pa); PyBuffer_Release(&pb); PyBuffer_Release(&delta); PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"l1_rows", l1_rows, METH_VARARGS,
     "l1_rows(rows, n, a, b, delta, out): out[r] = sum_i |a[r, i] - b[r, i] - delta[r]| (float32 a, b; float64 "
     "delta, out)"},
    {"w1_rows", w1_rows, METH_VARARGS,
     "w1_rows(rows, na, nb, a, b, ma, mb, shift_a, shift_b, out, has_ma, has_mb): out[r] = sum_i |a_(i) - b_(i)| "
     "for row r of float32 a [rows, na] and b [rows, nb] (values minus the float64 shifts; int32 multiplicities "
     "ma, mb when has_ma, has_mb)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_swd_kernel", "Exact 1-D W1 for SWD without sorting.", -1, methods,
                                     NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__swd_kernel(void) { return PyModule_Create(&module); }
