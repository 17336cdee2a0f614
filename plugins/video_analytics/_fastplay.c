/* Plays' K_J values (CONTRACT §2, §3, §5) in one pass each: an optional accelerator of
 * video_analytics.play_decode (the Python path is the reference and the fallback; both must give
 * identical results, see tests/unit/test_play_fast.py).
 *
 * decode_j(values, seg_max, max_bytes) -> (status, htmap, lengths, segs, cnts)
 *     values: a list of bytes, str or None. status (bytes, one per value): 0 decoded, 1 None,
 *     2 left to the Python path. A value is decoded only when it is plain compact-or-spaced JSON
 *     of the form [[s,c],...] with decimal integers (no sign, no leading zero, at most 18 digits),
 *     1 <= s <= seg_max and 0 <= c <= 2**31-1, and at most max_bytes long; anything else (other
 *     JSON, out-of-range numbers, bad text, other types) is status 2, so every quarantine reason
 *     and every limit comes from the one Python rule. htmap: per value the play's merged runs
 *     ([[2s-2,2s,c],...], neighbours merged when contiguous with equal counts, in K_J order) as
 *     ujson.dumps writes them, or None. lengths: int64 per value (pairs, 0 unless decoded);
 *     segs, cnts: int32, flat, in value order.
 * decode_j_arrow(parts, seg_max, max_bytes) -> the same, for the values of Arrow binary arrays that are not
 *     null, given as [(offsets, data, validity, bit), ...] (the n + 1 int32 offsets of each part, its slice
 *     offset applied; its data; its validity bitmap or None, and the bit of its first value).
 * segment_sums(vrank, jcode, offsets, lengths, segs, cnts, n_vids, max_seg)
 *         -> (vrank, seg, heat, plays) as bytes of int64, sorted by (vrank, seg)
 *     (vrank, jcode, offsets, lengths: int64 buffers; segs, cnts: int32)
 *     per (vid, segment) the sum of counts and the number of K_J entries over the plays, play i
 *     having vid rank vrank[i] (0 <= rank < n_vids) and the K_J entries jcode[i] of the table
 *     (offsets, lengths, segs, cnts); every segment is in [1, max_seg].
 *
 * sums_need(gid, jcode, offsets, lengths, segs, need, max_seg) -> 0, or -1 (a segment outside [1, max_seg])
 * sums_add(gid, jcode, offsets, lengths, segs, cnts, off, heat, plays) -> 0, or -1 (nothing added)
 *     the running per (vid, segment) sums of ``play_fast.SegmentSums``, in dense per-group blocks of
 *     int32 cells: need[g] raised to the largest segment + 1 of group g's plays; then heat/plays[off[g] + s]
 *     added, unless a cell would pass 2**31 - 1.
 *
 * resp_mget(buf, pos, filled, count) -> None | ([reply, ...], end)
 *     the count MGET replies (RESP2 or RESP3) that start at buf[pos] and end before buf[filled], when all
 *     are complete (None otherwise); a reply is (n, nulls, validity, offsets, data), the Arrow buffers of a
 *     binary array (validity bits, int32 offsets; int64, large_binary, past 2 GiB of data), or ("err",
 *     text) for an error reply. ValueError when the bytes are not MGET replies.
 *
 * resp_mget_command(keys, suffix) -> bytes
 *     "MGET key+suffix ..." in RESP; keys: a list of str (UTF-8) or bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- growable buffers */

typedef struct {
    char *p;
    Py_ssize_t n, cap;
} buf_t;

static int buf_reserve(buf_t *b, Py_ssize_t extra) {
    if (b->n + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + extra) cap *= 2;
    char *p = PyMem_Realloc(b->p, (size_t)cap);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(buf_t *b, const void *src, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->p + b->n, src, (size_t)n);
    b->n += n;
    return 0;
}

static PyObject *buf_bytes(buf_t *b) { return PyBytes_FromStringAndSize(b->p ? b->p : "", b->n); }

/* ---------------------------------------------------------------- K_J parsing */

#define COUNT_MAX 2147483647LL

static inline const char *skip_ws(const char *s, const char *end) {
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) s++;
    return s;
}

/* An unsigned decimal integer without leading zeros, at most 18 digits; NULL when not one. */
static inline const char *read_uint(const char *s, const char *end, int64_t *out) {
    const char *start = s;
    int64_t v = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        s++;
    }
    Py_ssize_t nd = s - start;
    if (nd == 0 || nd > 18 || (nd > 1 && *start == '0')) return NULL;
    *out = v;
    return s;
}

/* Parses one value into seg/cnt (room for len / 5 + 1 pairs); returns the number of pairs, or -1
 * when it is not a value this parser decides. */
static Py_ssize_t parse_one(const char *s, Py_ssize_t len, int64_t seg_max, int32_t *seg_out, int32_t *cnt_out) {
    const char *end = s + len;
    Py_ssize_t pairs = 0;
    s = skip_ws(s, end);
    if (s == end || *s++ != '[') return -1;
    s = skip_ws(s, end);
    if (s < end && *s == ']') {
        s = skip_ws(s + 1, end);
        return s == end ? 0 : -1;
    }
    for (;;) {
        int64_t seg, cnt;
        if (s == end || *s++ != '[') return -1;
        s = skip_ws(s, end);
        if (!(s = read_uint(s, end, &seg))) return -1;
        s = skip_ws(s, end);
        if (s == end || *s++ != ',') return -1;
        s = skip_ws(s, end);
        if (!(s = read_uint(s, end, &cnt))) return -1;
        s = skip_ws(s, end);
        if (s == end || *s++ != ']') return -1;
        if (seg < 1 || seg > seg_max || cnt > COUNT_MAX) return -1;
        seg_out[pairs] = (int32_t)seg;
        cnt_out[pairs] = (int32_t)cnt;
        pairs++;
        s = skip_ws(s, end);
        if (s == end) return -1;
        if (*s == ',') {
            s = skip_ws(s + 1, end);
            continue;
        }
        if (*s != ']') return -1;
        s = skip_ws(s + 1, end);
        return s == end ? pairs : -1;
    }
}

static inline char *put_uint(char *p, uint64_t u) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n) *p++ = tmp[--n];
    return p;
}

/* The merged runs of n pairs as ujson.dumps writes them (tmp: room for 40 bytes a pair + 2). */
static PyObject *runs_json(const int32_t *seg, const int32_t *cnt, Py_ssize_t n, char *tmp) {
    char *p = tmp;
    *p++ = '[';
    Py_ssize_t i = 0;
    while (i < n) {
        int64_t start = 2 * (int64_t)seg[i] - 2, stop = 2 * (int64_t)seg[i];
        int32_t v = cnt[i];
        Py_ssize_t j = i + 1;
        while (j < n && 2 * (int64_t)seg[j] - 2 == stop && cnt[j] == v) {
            stop = 2 * (int64_t)seg[j];
            j++;
        }
        if (i) *p++ = ',';
        *p++ = '[';
        p = put_uint(p, (uint64_t)start);
        *p++ = ',';
        p = put_uint(p, (uint64_t)stop);
        *p++ = ',';
        p = put_uint(p, (uint64_t)v);
        *p++ = ']';
        i = j;
    }
    *p++ = ']';
    PyObject *out = PyUnicode_New(p - tmp, 127);
    if (out) memcpy(PyUnicode_DATA(out), tmp, (size_t)(p - tmp));
    return out;
}

/* The values' texts (s[i], len[i]; s[i] NULL: not text, st[i] already 1 or 2) parsed as decode_j says. */
static PyObject *decode_spans(Py_ssize_t n, const char **sp, const Py_ssize_t *ln, char *st0, long long seg_max,
                              long long max_bytes) {
    Py_ssize_t room = 0, longest = 0;
    for (Py_ssize_t i = 0; i < n; i++) { /* room for every pair: "[s,c]," takes 6 bytes or more */
        Py_ssize_t len = sp[i] && ln[i] <= max_bytes ? ln[i] : 0;
        room += len / 5 + 1;
        if (len > longest) longest = len;
    }
    PyObject *status = PyBytes_FromStringAndSize(NULL, n); /* not from st0: one byte would be a shared object */
    PyObject *lengths = PyBytes_FromStringAndSize(NULL, n * 8);
    PyObject *segs = PyBytes_FromStringAndSize(NULL, room * 4);
    PyObject *cnts = PyBytes_FromStringAndSize(NULL, room * 4);
    PyObject *htmap = PyList_New(n);
    char *tmp = PyMem_Malloc((size_t)(longest / 5 + 1) * 40 + 2);
    PyObject *result = NULL;
    if (!status || !lengths || !segs || !cnts || !htmap || !tmp) {
        if (!tmp) PyErr_NoMemory();
        goto done;
    }
    char *st = PyBytes_AS_STRING(status);
    int64_t *lens = (int64_t *)PyBytes_AS_STRING(lengths);
    int32_t *seg = (int32_t *)PyBytes_AS_STRING(segs), *cnt = (int32_t *)PyBytes_AS_STRING(cnts);
    Py_ssize_t at = 0;
    if (n) memcpy(st, st0, (size_t)n);
    for (Py_ssize_t i = 0; i < n; i++) {
        lens[i] = 0;
        Py_INCREF(Py_None);
        PyList_SET_ITEM(htmap, i, Py_None);
        if (!sp[i] || ln[i] > max_bytes) continue;
        Py_ssize_t pairs = parse_one(sp[i], ln[i], seg_max, seg + at, cnt + at);
        if (pairs < 0) continue;
        PyObject *runs = runs_json(seg + at, cnt + at, pairs, tmp);
        if (!runs) goto done;
        PyList_SET_ITEM(htmap, i, runs);
        Py_DECREF(Py_None);
        st[i] = 0;
        lens[i] = pairs;
        at += pairs;
    }
    if (_PyBytes_Resize(&segs, at * 4) < 0 || _PyBytes_Resize(&cnts, at * 4) < 0) goto done;
    result = PyTuple_Pack(5, status, htmap, lengths, segs, cnts);
done:
    Py_XDECREF(status);
    Py_XDECREF(lengths);
    Py_XDECREF(segs);
    Py_XDECREF(cnts);
    Py_XDECREF(htmap);
    PyMem_Free(tmp);
    return result;
}

static PyObject *spans_result(Py_ssize_t n, const char **sp, Py_ssize_t *ln, char *st, long long seg_max,
                              long long max_bytes) {
    PyObject *out = decode_spans(n, sp, ln, st, seg_max, max_bytes);
    PyMem_Free(sp);
    PyMem_Free(ln);
    PyMem_Free(st);
    return out;
}

static int spans_new(Py_ssize_t n, const char ***sp, Py_ssize_t **ln, char **st) {
    *sp = PyMem_Malloc(sizeof(char *) * (size_t)(n ? n : 1));
    *ln = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n ? n : 1));
    *st = PyMem_Malloc((size_t)(n ? n : 1));
    if (*sp && *ln && *st) return 0;
    PyMem_Free(*sp);
    PyMem_Free(*ln);
    PyMem_Free(*st);
    PyErr_NoMemory();
    return -1;
}

static PyObject *decode_j(PyObject *self, PyObject *args) {
    PyObject *values;
    long long seg_max, max_bytes;
    if (!PyArg_ParseTuple(args, "O!LL", &PyList_Type, &values, &seg_max, &max_bytes)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(values);
    const char **sp;
    Py_ssize_t *ln;
    char *st;
    if (spans_new(n, &sp, &ln, &st) < 0) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyList_GET_ITEM(values, i);
        sp[i] = NULL;
        ln[i] = 0;
        st[i] = v == Py_None ? 1 : 2;
        if (PyBytes_CheckExact(v)) {
            sp[i] = PyBytes_AS_STRING(v);
            ln[i] = PyBytes_GET_SIZE(v);
        } else if (PyUnicode_CheckExact(v) && PyUnicode_IS_ASCII(v)) {
            sp[i] = (const char *)PyUnicode_DATA(v);
            ln[i] = PyUnicode_GET_LENGTH(v);
        }
    }
    return spans_result(n, sp, ln, st, seg_max, max_bytes);
}

/* decode_j of Arrow binary arrays, their nulls left out: parts is a list of (offsets, data, validity, bit),
 * offsets the n + 1 int32 offsets of a part (its slice offset applied) into its data buffer, validity its
 * validity bitmap (None: no nulls) with the part's first value at bit ``bit``. */
static PyObject *decode_j_arrow(PyObject *self, PyObject *args) {
    PyObject *parts;
    long long seg_max, max_bytes;
    if (!PyArg_ParseTuple(args, "O!LL", &PyList_Type, &parts, &seg_max, &max_bytes)) return NULL;
    Py_ssize_t np_ = PyList_GET_SIZE(parts), n = 0, k = 0;
    Py_buffer *views = PyMem_Calloc((size_t)(3 * np_ + 1), sizeof(Py_buffer));
    Py_ssize_t *bits = PyMem_Calloc((size_t)(np_ + 1), sizeof(Py_ssize_t));
    char *has_valid = PyMem_Calloc((size_t)(np_ + 1), 1);
    PyObject *out = NULL;
    const char **sp = NULL;
    Py_ssize_t *ln = NULL;
    char *st = NULL;
    if (!views || !bits || !has_valid) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t p = 0; p < np_; p++) {
        PyObject *t = PyList_GET_ITEM(parts, p);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 4) {
            PyErr_SetString(PyExc_TypeError, "decode_j_arrow: parts are (offsets, data, validity, bit) tuples");
            goto fail;
        }
        bits[p] = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 3));
        if (bits[p] < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "decode_j_arrow: bad bit offset");
            goto fail;
        }
        for (int b = 0; b < 3; b++) {
            PyObject *o = PyTuple_GET_ITEM(t, b);
            if (b == 2 && o == Py_None) continue;
            if (PyObject_GetBuffer(o, &views[3 * p + b], PyBUF_SIMPLE) < 0) goto fail;
            if (b == 2) has_valid[p] = 1;
        }
        Py_ssize_t m = views[3 * p].len / 4 - 1;
        if (views[3 * p].len < 4 || views[3 * p].len % 4 || (has_valid[p] && views[3 * p + 2].len * 8 < bits[p] + m)) {
            PyErr_SetString(PyExc_ValueError, "decode_j_arrow: bad offsets or validity");
            goto fail;
        }
        n += m;
    }
    if (spans_new(n, &sp, &ln, &st) < 0) goto fail;
    for (Py_ssize_t p = 0; p < np_; p++) {
        const int32_t *off = views[3 * p].buf;
        Py_ssize_t m = views[3 * p].len / 4 - 1, size = views[3 * p + 1].len;
        const char *data = views[3 * p + 1].buf;
        const uint8_t *vb = has_valid[p] ? views[3 * p + 2].buf : NULL;
        for (Py_ssize_t i = 0; i < m; i++) {
            Py_ssize_t bit = bits[p] + i;
            if (vb && !((vb[bit >> 3] >> (bit & 7)) & 1)) continue; /* null: left out */
            int32_t a = off[i], b = off[i + 1];
            st[k] = 2;
            sp[k] = NULL;
            ln[k] = 0;
            if (a >= 0 && b >= a && b <= size) { /* else not a valid array: the Python rule decides */
                sp[k] = data + a;
                ln[k] = b - a;
            }
            k++;
        }
    }
    out = spans_result(k, sp, ln, st, seg_max, max_bytes);
fail:
    if (views)
        for (Py_ssize_t j = 0; j < 3 * np_; j++)
            if (views[j].obj) PyBuffer_Release(&views[j]);
    PyMem_Free(views);
    PyMem_Free(bits);
    PyMem_Free(has_valid);
    return out;
}

/* ---------------------------------------------------------------- segment sums */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int get_ints(PyObject *obj, Py_buffer *view, Py_ssize_t *n, Py_ssize_t size) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len % size) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "int buffers of the wrong size");
        return -1;
    }
    *n = view->len / size;
    return 0;
}

static PyObject *segment_sums(PyObject *self, PyObject *args) {
    PyObject *o[6];
    long long n_vids, max_seg;
    if (!PyArg_ParseTuple(args, "OOOOOOLL", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &n_vids, &max_seg)) return NULL;
    Py_buffer v[6];
    Py_ssize_t len[6];
    int got = 0;
    PyObject *result = NULL;
    int64_t *heat = NULL, *plays = NULL, *order = NULL, *start = NULL, *touched = NULL;
    buf_t out_v = {0}, out_s = {0}, out_h = {0}, out_p = {0};
    for (; got < 6; got++)
        if (get_ints(o[got], &v[got], &len[got], got < 4 ? 8 : 4) < 0) goto done;
    const int64_t *vrank = v[0].buf, *jcode = v[1].buf, *offsets = v[2].buf, *lengths = v[3].buf;
    const int32_t *segs = v[4].buf, *cnts = v[5].buf;
    Py_ssize_t n = len[0], nj = len[2];
    if (len[1] != n || len[3] != nj || len[5] != len[4] || n_vids < 0 || max_seg < 0) {
        PyErr_SetString(PyExc_ValueError, "segment_sums: inconsistent arguments");
        goto done;
    }
    heat = PyMem_Calloc((size_t)max_seg + 1, 8);
    plays = PyMem_Calloc((size_t)max_seg + 1, 8);
    touched = PyMem_Malloc(((size_t)max_seg + 1) * 8);
    order = PyMem_Malloc((size_t)n * 8 + 8);
    start = PyMem_Calloc((size_t)n_vids + 2, 8);
    if (!heat || !plays || !touched || !order || !start) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (vrank[i] < 0 || vrank[i] >= n_vids || jcode[i] < 0 || jcode[i] >= nj) {
            PyErr_SetString(PyExc_ValueError, "segment_sums: rank or code out of range");
            goto done;
        }
        start[vrank[i] + 1]++;
    }
    for (Py_ssize_t r = 0; r < n_vids; r++) start[r + 1] += start[r];
    for (Py_ssize_t i = 0; i < n; i++) order[start[vrank[i]]++] = i; /* counting sort, stable */
    Py_ssize_t lo = 0;
    for (int64_t r = 0; r < n_vids; r++) {
        Py_ssize_t hi = start[r], nt = 0;
        int64_t lo_seg = max_seg + 1, hi_seg = 0;
        for (Py_ssize_t k = lo; k < hi; k++) {
            int64_t j = jcode[order[k]];
            if (offsets[j] < 0 || lengths[j] < 0 || offsets[j] + lengths[j] > len[4]) {
                PyErr_SetString(PyExc_ValueError, "segment_sums: table out of range");
                goto done;
            }
            for (int64_t e = offsets[j], stop = offsets[j] + lengths[j]; e < stop; e++) {
                int64_t s = segs[e];
                if (s < 1 || s > max_seg) {
                    PyErr_SetString(PyExc_ValueError, "segment_sums: segment out of range");
                    goto done;
                }
                if (!plays[s]) {
                    touched[nt++] = s;
                    if (s < lo_seg) lo_seg = s;
                    if (s > hi_seg) hi_seg = s;
                }
                heat[s] += cnts[e];
                plays[s]++;
            }
        }
        lo = hi;
        if (!nt) continue;
        if (hi_seg - lo_seg + 1 <= 4 * (int64_t)nt) { /* dense enough: the segments in order by a scan */
            nt = 0;
            for (int64_t s = lo_seg; s <= hi_seg; s++)
                if (plays[s]) touched[nt++] = s;
        } else {
            qsort(touched, (size_t)nt, 8, cmp_i64);
        }
        if (buf_reserve(&out_v, nt * 8) < 0 || buf_reserve(&out_s, nt * 8) < 0 || buf_reserve(&out_h, nt * 8) < 0 ||
            buf_reserve(&out_p, nt * 8) < 0)
            goto done;
        for (Py_ssize_t t = 0; t < nt; t++) {
            int64_t s = touched[t];
            buf_put(&out_v, &r, 8);
            buf_put(&out_s, &s, 8);
            buf_put(&out_h, &heat[s], 8);
            buf_put(&out_p, &plays[s], 8);
            heat[s] = plays[s] = 0;
        }
    }
    PyObject *b[4] = {buf_bytes(&out_v), buf_bytes(&out_s), buf_bytes(&out_h), buf_bytes(&out_p)};
    if (b[0] && b[1] && b[2] && b[3]) result = PyTuple_Pack(4, b[0], b[1], b[2], b[3]);
    for (int k = 0; k < 4; k++) Py_XDECREF(b[k]);
done:
    for (int k = 0; k < got; k++) PyBuffer_Release(&v[k]);
    PyMem_Free(heat);
    PyMem_Free(plays);
    PyMem_Free(touched);
    PyMem_Free(order);
    PyMem_Free(start);
    PyMem_Free(out_v.p);
    PyMem_Free(out_s.p);
    PyMem_Free(out_h.p);
    PyMem_Free(out_p.p);
    return result;
}


/* ---------------------------------------------------------------- running sums (dense per-vid blocks) */

/* need[g] = max(need[g], the largest segment + 1 of group g's plays); -1 when a segment is outside
 * [1, max_seg] or a code is out of range (nothing added then). */
static PyObject *sums_need(PyObject *self, PyObject *args) {
    PyObject *o[6];
    long long max_seg;
    if (!PyArg_ParseTuple(args, "OOOOOOL", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &max_seg)) return NULL;
    Py_buffer v[6];
    Py_ssize_t len[6];
    int got = 0, ok = 1;
    static const Py_ssize_t sizes[5] = {8, 8, 8, 8, 4};
    for (; got < 5; got++)
        if (get_ints(o[got], &v[got], &len[got], sizes[got]) < 0) goto fail;
    if (PyObject_GetBuffer(o[5], &v[5], PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) goto fail;
    got = 6;
    len[5] = v[5].len / 8;
    const int64_t *gid = v[0].buf, *jcode = v[1].buf, *offsets = v[2].buf, *lengths = v[3].buf;
    const int32_t *segs = v[4].buf;
    int64_t *need = v[5].buf;
    Py_ssize_t n = len[0], nj = len[2];
    if (len[1] != n || len[3] != nj) ok = 0;
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        int64_t g = gid[i], j = jcode[i], hi = 0;
        if (g < 0 || g >= len[5] || j < 0 || j >= nj || offsets[j] < 0 || lengths[j] < 0 ||
            offsets[j] + lengths[j] > len[4]) {
            ok = 0;
            break;
        }
        for (int64_t e = offsets[j], stop = offsets[j] + lengths[j]; e < stop; e++) {
            int64_t sg = segs[e];
            if (sg < 1 || sg > max_seg) {
                ok = 0;
                break;
            }
            if (sg > hi) hi = sg;
        }
        if (lengths[j] && hi + 1 > need[g]) need[g] = hi + 1;
    }
    for (int k = 0; k < got; k++) PyBuffer_Release(&v[k]);
    return PyLong_FromLong(ok ? 0 : -1);
fail:
    for (int k = 0; k < got; k++) PyBuffer_Release(&v[k]);
    return NULL;
}

/* heat[off[g] + s] += count, plays[off[g] + s] += 1 for every K_J entry (s, count) of every play (group g),
 * in int32 cells; the blocks were made large enough by sums_need (checked again: ValueError). Returns 0,
 * or -1 when a cell would pass 2**31 - 1: everything added by this call is taken back first. */
static void sums_undo(const int64_t *gid, const int64_t *jcode, const int64_t *offsets, const int64_t *lengths,
                      const int64_t *off, const int32_t *segs, const int32_t *cnts, int32_t *heat, int32_t *plays,
                      Py_ssize_t upto, int64_t upto_e) {
    for (Py_ssize_t i = 0; i <= upto; i++) {
        int64_t j = jcode[i], base = off[gid[i]];
        int64_t stop = i == upto ? upto_e : offsets[j] + lengths[j];
        for (int64_t e = offsets[j]; e < stop; e++) {
            heat[base + segs[e]] -= cnts[e];
            plays[base + segs[e]]--;
        }
    }
}

static PyObject *sums_add(PyObject *self, PyObject *args) {
    PyObject *o[9];
    if (!PyArg_ParseTuple(args, "OOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8]))
        return NULL;
    Py_buffer v[9];
    Py_ssize_t len[9];
    int got = 0;
    long status = 0;
    static const Py_ssize_t sizes[9] = {8, 8, 8, 8, 4, 4, 8, 4, 4};
    for (; got < 9; got++) {
        if (got < 7) {
            if (get_ints(o[got], &v[got], &len[got], sizes[got]) < 0) goto fail;
        } else {
            if (PyObject_GetBuffer(o[got], &v[got], PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) goto fail;
            if (v[got].len % 4) {
                PyBuffer_Release(&v[got]);
                PyErr_SetString(PyExc_ValueError, "sums_add: int32 cells expected");
                goto fail;
            }
            len[got] = v[got].len / 4;
        }
    }
    const int64_t *gid = v[0].buf, *jcode = v[1].buf, *offsets = v[2].buf, *lengths = v[3].buf, *off = v[6].buf;
    const int32_t *segs = v[4].buf, *cnts = v[5].buf;
    int32_t *heat = v[7].buf, *plays = v[8].buf;
    Py_ssize_t n = len[0], nj = len[2], cells = len[7] < len[8] ? len[7] : len[8];
    for (Py_ssize_t i = 0; i < n; i++) { /* every index checked before anything is added */
        int64_t g = gid[i], j = jcode[i];
        if (g < 0 || g >= len[6] || j < 0 || j >= nj || offsets[j] < 0 || lengths[j] < 0 ||
            offsets[j] + lengths[j] > len[4]) {
            PyErr_SetString(PyExc_ValueError, "sums_add: code out of range");
            goto fail;
        }
        for (int64_t e = offsets[j], stop = offsets[j] + lengths[j]; e < stop; e++) {
            int64_t c = off[g] + segs[e];
            if (c < 0 || c >= cells || cnts[e] < 0) {
                PyErr_SetString(PyExc_ValueError, "sums_add: cell out of range");
                goto fail;
            }
        }
    }
    for (Py_ssize_t i = 0; i < n && !status; i++) {
        int64_t j = jcode[i], base = off[gid[i]];
        for (int64_t e = offsets[j], stop = offsets[j] + lengths[j]; e < stop; e++) {
            int64_t c = base + segs[e];
            if ((int64_t)heat[c] + cnts[e] > 2147483647LL || plays[c] == 2147483647) {
                sums_undo(gid, jcode, offsets, lengths, off, segs, cnts, heat, plays, i, e);
                status = -1;
                break;
            }
            heat[c] += cnts[e];
            plays[c]++;
        }
    }
    for (int k = 0; k < got; k++) PyBuffer_Release(&v[k]);
    return PyLong_FromLong(status);
fail:
    for (int k = 0; k < got; k++) PyBuffer_Release(&v[k]);
    return NULL;
}

/* ---------------------------------------------------------------- MGET replies */

/* A decimal integer (optional '-') ending in "\r\n" at p; returns the byte after it, or NULL when the
 * buffer ends first (*bad set when it is not a number). */
static const char *resp_int(const char *p, const char *end, int64_t *out, int *bad) {
    int neg = 0;
    int64_t v = 0;
    const char *start;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    start = p;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - start >= 18) {
            *bad = 1;
            return NULL;
        }
        v = v * 10 + (*p++ - '0');
    }
    if (p + 2 > end) return NULL;
    if (p == start || p[0] != '\r' || p[1] != '\n') {
        *bad = 1;
        return NULL;
    }
    *out = neg ? -v : v;
    return p + 2;
}

/* Scans one MGET reply at p: *n elements, *size bytes of values; returns the end, or NULL (incomplete,
 * or *bad: 1 protocol error, 2 an error reply whose text starts at p + 1). */
static const char *resp_scan(const char *p, const char *end, int64_t *n, int64_t *size, int *bad) {
    if (p >= end) return NULL;
    if (*p == '-') {
        const char *q = memchr(p, '\n', (size_t)(end - p));
        if (!q) return NULL;
        *bad = 2;
        return q + 1;
    }
    if (*p != '*') {
        *bad = 1;
        return NULL;
    }
    p = resp_int(p + 1, end, n, bad);
    if (!p) return NULL;
    if (*n < 0) {
        *bad = 1;
        return NULL;
    }
    *size = 0;
    for (int64_t i = 0; i < *n; i++) {
        if (p >= end) return NULL;
        if (*p == '_') { /* RESP3 null */
            if (p + 3 > end) return NULL;
            p += 3;
            continue;
        }
        if (*p != '$') {
            *bad = 1;
            return NULL;
        }
        int64_t len;
        p = resp_int(p + 1, end, &len, bad);
        if (!p) return NULL;
        if (len < 0) continue;
        if (end - p < len + 2) return NULL;
        if (p[len] != '\r' || p[len + 1] != '\n') {
            *bad = 1;
            return NULL;
        }
        p += len + 2;
        *size += len;
    }
    return p;
}

static PyObject *resp_mget(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, filled;
    int count;
    if (!PyArg_ParseTuple(args, "y*nni", &view, &pos, &filled, &count)) return NULL;
    PyObject *result = NULL, *items = NULL;
    const char *base = view.buf, *end = base + (filled < view.len ? filled : view.len);
    const char *p = base + pos;
    const char *starts[16];
    int64_t ns[16], sizes[16];
    int bad = 0;
    if (count < 1 || count > 16 || pos < 0 || pos > end - base) {
        PyErr_SetString(PyExc_ValueError, "resp_mget: bad arguments");
        goto done;
    }
    for (int k = 0; k < count; k++) { /* all replies complete first: the scan only hops over headers */
        starts[k] = p;
        p = resp_scan(p, end, &ns[k], &sizes[k], &bad);
        if (bad == 1) {
            PyErr_SetString(PyExc_ValueError, "not a Redis MGET reply");
            goto done;
        }
        if (!p) {
            Py_INCREF(Py_None);
            result = Py_None;
            goto done;
        }
        if (bad == 2) ns[k] = -1, bad = 0;
    }
    items = PyList_New(count);
    if (!items) goto done;
    for (int k = 0; k < count; k++) {
        const char *q = starts[k];
        PyObject *item;
        if (ns[k] < 0) {
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            Py_ssize_t len = nl - q - 1;
            if (len > 0 && q[len] == '\r') len--;
            item = Py_BuildValue("(sy#)", "err", q + 1, len);
        } else {
            int64_t n = ns[k], at = 0, nulls = 0, len;
            int wide = sizes[k] > 2147483647LL;
            PyObject *valid = PyBytes_FromStringAndSize(NULL, (n + 7) / 8);
            PyObject *offs = PyBytes_FromStringAndSize(NULL, (n + 1) * (wide ? 8 : 4));
            PyObject *data = PyBytes_FromStringAndSize(NULL, sizes[k]);
            if (!valid || !offs || !data) {
                Py_XDECREF(valid);
                Py_XDECREF(offs);
                Py_XDECREF(data);
                goto done;
            }
            uint8_t *vb = (uint8_t *)PyBytes_AS_STRING(valid);
            int64_t *ob = (int64_t *)PyBytes_AS_STRING(offs);
            int32_t *ob32 = (int32_t *)PyBytes_AS_STRING(offs);
            char *db = PyBytes_AS_STRING(data);
            memset(vb, 0, (size_t)((n + 7) / 8));
            q = resp_int(q + 1, end, &len, &bad);
            for (int64_t i = 0; i < n; i++) {
                if (wide)
                    ob[i] = at;
                else
                    ob32[i] = (int32_t)at;
                if (*q == '_') {
                    q += 3;
                    nulls++;
                    continue;
                }
                q = resp_int(q + 1, end, &len, &bad);
                if (len < 0) {
                    nulls++;
                    continue;
                }
                memcpy(db + at, q, (size_t)len);
                at += len;
                q += len + 2;
                vb[i >> 3] |= (uint8_t)(1u << (i & 7));
            }
            if (wide)
                ob[n] = at;
            else
                ob32[n] = (int32_t)at;
            item = Py_BuildValue("(LLNNN)", (long long)n, (long long)nulls, valid, offs, data);
        }
        if (!item) goto done;
        PyList_SET_ITEM(items, k, item);
    }
    result = Py_BuildValue("(On)", items, (Py_ssize_t)(p - base));
done:
    Py_XDECREF(items);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *resp_mget_command(PyObject *self, PyObject *args) {
    PyObject *keys;
    const char *suffix;
    Py_ssize_t slen;
    if (!PyArg_ParseTuple(args, "O!y#", &PyList_Type, &keys, &suffix, &slen)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(keys), room = 32;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        Py_ssize_t len;
        if (PyUnicode_Check(k)) {
            if (!PyUnicode_AsUTF8AndSize(k, &len)) return NULL;
        } else if (PyBytes_Check(k)) {
            len = PyBytes_GET_SIZE(k);
        } else {
            PyErr_SetString(PyExc_TypeError, "resp_mget_command: keys must be str or bytes");
            return NULL;
        }
        room += len + slen + 24;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, room);
    if (!out) return NULL;
    char *p = PyBytes_AS_STRING(out);
    p += sprintf(p, "*%lld\r\n$4\r\nMGET\r\n", (long long)n + 1);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        Py_ssize_t len;
        const char *s = PyUnicode_Check(k) ? PyUnicode_AsUTF8AndSize(k, &len) : PyBytes_AS_STRING(k);
        if (!PyUnicode_Check(k)) len = PyBytes_GET_SIZE(k);
        *p++ = '$';
        p = put_uint(p, (uint64_t)(len + slen));
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, s, (size_t)len);
        p += len;
        memcpy(p, suffix, (size_t)slen);
        p += slen;
        *p++ = '\r';
        *p++ = '\n';
    }
    if (_PyBytes_Resize(&out, p - PyBytes_AS_STRING(out)) < 0) return NULL;
    return out;
}

static PyMethodDef methods[] = {
    {"decode_j", decode_j, METH_VARARGS, "K_J values -> (status, htmap, lengths, segs, cnts)."},
    {"decode_j_arrow", decode_j_arrow, METH_VARARGS, "decode_j of Arrow binary arrays' buffers."},
    {"segment_sums", segment_sums, METH_VARARGS, "Per (vid rank, segment) heat and plays, sorted."},
    {"sums_need", sums_need, METH_VARARGS, "Per group the block size its plays' segments need."},
    {"sums_add", sums_add, METH_VARARGS, "Plays' K_J entries added into dense per-group blocks."},
    {"resp_mget_command", resp_mget_command, METH_VARARGS, "MGET of keys + suffix, in RESP."},
    {"resp_mget", resp_mget, METH_VARARGS, "Complete MGET replies in a buffer -> Arrow buffers, or None."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastplay", "Plays: C K_J decoder and segment sums.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__fastplay(void) { return PyModule_Create(&module); }
