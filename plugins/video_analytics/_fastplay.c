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
 * pair_bound(buffer) -> the pairs a value can hold, as decode_j sizes its arrays: its '[' less one, at least 1.
 * guess_walk(seg, cnt, seg_max, steps, from_text=False) -> the parser's guesses of the next pair after
 *     "[seg - 1,cnt]," (made anew, or from that text as after a pair it read) and each guess after it: a list
 *     of steps (the bytes it compares, segment, count, bytes it then skips), all None when it makes no guess
 *     (for tests).
 * hash_binary(parts) -> bytes of a uint64 per value (a hash for deduplicating keys; see below).
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
 * resp_mget(buf, pos, filled, count[, state]) -> None | ([reply, ...], end)
 *     the count MGET replies (RESP2 or RESP3) that start at buf[pos] and end before buf[filled], when all
 *     are complete (None otherwise); a reply is (n, nulls, validity, offsets, data), the Arrow buffers of a
 *     binary array (validity bits, int32 offsets; int64, large_binary, past 2 GiB of data), or ("err",
 *     text) for an error reply. ValueError when the bytes are not MGET replies. state: a writable buffer of
 *     at least RESP_STATE_SIZE zero bytes at first, passed again with the same buf (grown or not) and pos
 *     after each None: the scan goes on where it stopped.
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
#include <errno.h>
#include <math.h>
#if defined(__SSE2__) && defined(__x86_64__)
#define HAVE_SSE2_64 1
#include <emmintrin.h>
#endif

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

/* The decimal digits of u at p; returns their end. */
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

#ifdef HAVE_SSE2_64
/* The usual next pair of a K_J, "[<segment + 1>,<same count>],", as 16 bytes compared at once: a viewer's
 * segments are mostly consecutive with the same count, so most pairs are this text (none are when the value
 * has spaces; they take the general path, as does every other text). */
typedef struct {
    __m128i text, one; /* one: 1 in the byte of the segment's last digit */
    int mask, n;        /* n: the text's length; 0: no guess */
    int pos, last;      /* the segment's last digit: its byte, its value */
    int64_t seg, cnt;
} guess_t;

#define CARRY_MAX 5
#define GUESS_MISSES 2 /* guesses missed in a row ... */
#define GUESS_REST 16  /* ... before this many pairs go without one */
/* [byte of the last digit][its trailing 9s]: what a carry adds to the text (the 9s to '0', the digit before
 * them one more) */
static __m128i carry_tab[16][CARRY_MAX + 1];
static __m128i one_tab[16]; /* 1 in byte k */

static void carry_init(void) {
    for (int k = 0; k < 16; k++) {
        char d[16] = {0};
        d[k] = 1;
        one_tab[k] = _mm_loadu_si128((const __m128i *)d);
    }
    for (int p = 1; p < 16; p++)
        for (int t = 1; t <= CARRY_MAX && p - t >= 1; t++) {
            signed char d[16] = {0};
            for (int k = p - t + 1; k <= p; k++) d[k] = -9;
            d[p - t] = 1;
            carry_tab[p][t] = _mm_loadu_si128((const __m128i *)d);
        }
}

/* The guess that is the tight text "[S,C]," at p itself (nd_s, nd_c: its digits; 16 bytes readable at p, those
 * past the ',' masked out); n 0 when it is longer than the 16 bytes compared. */
static inline guess_t guess_at(const char *p, int nd_s, int nd_c, int64_t seg, int64_t cnt) {
    guess_t g;
    g.n = nd_s + nd_c + 4;
    if (g.n > 16) {
        g.n = 0;
        return g;
    }
    g.text = _mm_loadu_si128((const __m128i *)p);
    g.one = one_tab[nd_s];
    g.mask = (1 << g.n) - 1;
    g.pos = nd_s;
    g.last = p[nd_s] - '0';
    g.seg = seg;
    g.cnt = cnt;
    return g;
}

/* The guess "[seg,cnt],", its text written anew (none past seg_max). */
static guess_t guess_make(int64_t seg, int64_t cnt, int64_t seg_max) {
    char t[48] = {0};
    guess_t g;
    g.n = 0;
    if (seg > seg_max) return g;
    char *d = put_uint(t + 1, (uint64_t)seg), *e;
    t[0] = '[';
    *d = ',';
    e = put_uint(d + 1, (uint64_t)cnt);
    e[0] = ']';
    e[1] = ',';
    return guess_at(t, (int)(d - (t + 1)), (int)(e - (d + 1)), seg, cnt);
}

/* The guess after it matched: the segment one more, counted up in the register (a carry from the carry table;
 * a digit more, or past the limit, writes it anew). */
static inline void guess_next(guess_t *g, int64_t seg_max) {
    if (g->last != 9 && g->seg < seg_max) {
        g->text = _mm_add_epi8(g->text, g->one);
        g->last++;
        g->seg++;
        return;
    }
    int t = 1;
    int64_t x = g->seg / 10;
    while (x % 10 == 9) {
        t++;
        x /= 10;
    }
    if (x == 0 || t > CARRY_MAX || g->seg >= seg_max) {
        *g = guess_make(g->seg + 1, g->cnt, seg_max);
        return;
    }
    g->text = _mm_add_epi8(g->text, carry_tab[g->pos][t]);
    g->last = 0;
    g->seg++;
}

/* The guess after a pair the general path read written tight, "[S,C]," at p (16 bytes readable there): its own
 * text, the segment counted up as guess_next does. No division, no copy: a value whose pairs seldom follow each
 * other pays little for the guesses it makes. */
static inline guess_t guess_from(const char *p, int nd_s, int nd_c, int64_t seg, int64_t cnt, int64_t seg_max) {
    guess_t g = guess_at(p, nd_s, nd_c, seg, cnt);
    if (g.n) guess_next(&g, seg_max);
    return g;
}
#endif

/* Parses one value into seg/cnt (room for pair_bound pairs); returns the number of pairs, or -1
 * when it is not a value this parser decides. */
static Py_ssize_t parse_one(const char *s, Py_ssize_t len, int64_t seg_max, int32_t *seg_out, int32_t *cnt_out) {
    const char *end = s + len;
    Py_ssize_t pairs = 0;
#ifdef HAVE_SSE2_64
    guess_t g;
    int misses = 0, rest = 0; /* guesses missed in a row; pairs left without a guess */
    g.n = 0;
#endif
    s = skip_ws(s, end);
    if (s == end || *s++ != '[') return -1;
    s = skip_ws(s, end);
    if (s < end && *s == ']') {
        s = skip_ws(s + 1, end);
        return s == end ? 0 : -1;
    }
    for (;;) {
        int64_t seg, cnt;
#ifdef HAVE_SSE2_64
        if (g.n && end - s >= 16) {
            if ((_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)s), g.text)) & g.mask) == g.mask) {
                seg_out[pairs] = (int32_t)g.seg; /* <= seg_max (guess_next, guess_make); the count was read or checked */
                cnt_out[pairs] = (int32_t)g.cnt;
                pairs++;
                s = skip_ws(s + g.n, end); /* past its ',' and any spaces, as the general path goes */
                guess_next(&g, seg_max);
                misses = 0;
                continue;
            }
            if (++misses == GUESS_MISSES) { /* pairs that do not follow each other: no guess for a while */
                misses = 0;
                rest = GUESS_REST;
            }
        }
#endif
        const char *p0 = s, *seg0, *cnt0; /* the pair's '[', its two numbers' first digits */
        if (s == end || *s++ != '[') return -1;
        s = skip_ws(s, end);
        seg0 = s;
        if (!(s = read_uint(s, end, &seg))) return -1;
        int nd_s = (int)(s - seg0);
        s = skip_ws(s, end);
        if (s == end || *s++ != ',') return -1;
        s = skip_ws(s, end);
        cnt0 = s;
        if (!(s = read_uint(s, end, &cnt))) return -1;
        int nd_c = (int)(s - cnt0);
        s = skip_ws(s, end);
        if (s == end || *s++ != ']') return -1;
        if (seg < 1 || seg > seg_max || cnt > COUNT_MAX) return -1;
        seg_out[pairs] = (int32_t)seg;
        cnt_out[pairs] = (int32_t)cnt;
        pairs++;
#ifdef HAVE_SSE2_64
        g.n = 0; /* a guess only after a pair written tight, "[S,C],", as the guess itself is */
        if (rest)
            rest--;
        else if (s - p0 == nd_s + nd_c + 3 && s < end && *s == ',' && end - p0 >= 16)
            g = guess_from(p0, nd_s, nd_c, seg, cnt, seg_max);
#else
        (void)p0, (void)nd_s, (void)nd_c;
#endif
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

/* An upper bound of the pairs a value can hold: its '[' minus the outer one (a pair is written only once its
 * "[s,c]" is read); at least 1. Sizes a call's pair arrays near what they take, so that they come from the
 * heap the previous chunk freed instead of a fresh mapping whose pages fault in again (a bound from the length
 * alone was ~3 times too large: past glibc's mmap threshold for a chunk of 20,000 realistic plays). */
static Py_ssize_t pair_bound(const char *s, Py_ssize_t len) {
    Py_ssize_t k = 0, i = 0;
#ifdef HAVE_SSE2_64
    /* 16 bytes a step, counted in byte lanes (at most 255 steps before they are summed) */
    const __m128i br = _mm_set1_epi8('['), zero = _mm_setzero_si128();
    while (len - i >= 16) {
        __m128i acc = zero;
        Py_ssize_t steps = (len - i) / 16;
        if (steps > 255) steps = 255;
        for (Py_ssize_t t = 0; t < steps; t++, i += 16)
            acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(s + i)), br));
        __m128i sum = _mm_sad_epu8(acc, zero);
        k += _mm_cvtsi128_si64(sum) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(sum, sum));
    }
#endif
    for (; i < len; i++) k += s[i] == '[';
    return k > 1 ? k - 1 : 1;
}

static PyObject *guess_walk(PyObject *self, PyObject *args) {
    long long seg, cnt, seg_max;
    Py_ssize_t steps;
    int from_text = 0;
    if (!PyArg_ParseTuple(args, "LLLn|p", &seg, &cnt, &seg_max, &steps, &from_text)) return NULL;
    if (seg < 1 + from_text || seg > seg_max + 1 || cnt < 0 || cnt > COUNT_MAX || steps < 0) {
        PyErr_SetString(PyExc_ValueError, "guess_walk: 1 <= seg <= seg_max + 1 (2 <= from a text), "
                                          "0 <= cnt <= 2**31 - 1, steps >= 0");
        return NULL;
    }
    PyObject *out = PyList_New(0);
#ifdef HAVE_SSE2_64
    guess_t g;
    if (from_text) { /* the first guess as the parser makes it after reading "[seg - 1,cnt]," */
        char text[80];
        memset(text, '[', sizeof text);
        char *p = put_uint(text + 1, (uint64_t)(seg - 1));
        int nd_s = (int)(p - (text + 1));
        *p++ = ',';
        char *q = put_uint(p, (uint64_t)cnt);
        int nd_c = (int)(q - p);
        *q++ = ']';
        *q = ',';
        g = guess_from(text, nd_s, nd_c, seg - 1, cnt, seg_max);
    } else {
        g = guess_make(seg, cnt, seg_max);
    }
    for (Py_ssize_t k = 0; out && k < steps; k++) {
        char t[16], cmp[16]; /* cmp: the bytes the mask compares */
        int k2 = 0;
        _mm_storeu_si128((__m128i *)t, g.text);
        for (int i = 0; i < 16; i++)
            if (g.mask >> i & 1) cmp[k2++] = t[i];
        PyObject *item = g.n ? Py_BuildValue("(y#LLi)", cmp, (Py_ssize_t)k2, (long long)g.seg, (long long)g.cnt, g.n)
                             : Py_BuildValue("(OOOO)", Py_None, Py_None, Py_None, Py_None);
        if (!item || PyList_Append(out, item) < 0) Py_CLEAR(out);
        Py_XDECREF(item);
        if (!g.n) break;
        guess_next(&g, seg_max);
    }
#endif
    return out;
}

static PyObject *pair_bound_py(PyObject *self, PyObject *arg) {
    Py_buffer v;
    if (PyObject_GetBuffer(arg, &v, PyBUF_SIMPLE) < 0) return NULL;
    Py_ssize_t k = pair_bound(v.buf, v.len);
    PyBuffer_Release(&v);
    return PyLong_FromSsize_t(k);
}

/* The values' texts (s[i], len[i]; s[i] NULL: not text, st[i] already 1 or 2) parsed as decode_j says. */
static PyObject *decode_spans(Py_ssize_t n, const char **sp, const Py_ssize_t *ln, char *st0, long long seg_max,
                              long long max_bytes) {
    Py_ssize_t room = 0, longest = 0;
    for (Py_ssize_t i = 0; i < n; i++) { /* room for every pair */
        if (!sp[i] || ln[i] > max_bytes) {
            room += 1;
            continue;
        }
        room += pair_bound(sp[i], ln[i]);
        if (ln[i] > longest) longest = ln[i];
    }
    PyObject *status = PyBytes_FromStringAndSize(NULL, n); /* not from st0: one byte would be a shared object */
    PyObject *lengths = PyBytes_FromStringAndSize(NULL, n * 8);
    PyObject *segs = PyBytes_FromStringAndSize(NULL, room * 4);
    PyObject *cnts = PyBytes_FromStringAndSize(NULL, room * 4);
    PyObject *htmap = PyList_New(n);
    char *tmp = PyMem_Malloc((size_t)(longest / 6 + 1) * 40 + 2); /* k pairs take 6k + 1 bytes or more */
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

/* The values of Arrow binary arrays: parts is a list of (offsets, data, validity, bit), offsets the n + 1
 * int32 offsets of a part (its slice offset applied) into its data buffer, validity its validity bitmap
 * (None: no nulls) with the part's first value at bit ``bit``. Per value: sp/ln its bytes, st 0 (a value),
 * 1 (null) or 2 (offsets out of bounds: sp NULL). */
typedef struct {
    Py_ssize_t np, n;
    Py_buffer *views;
    const char **sp;
    Py_ssize_t *ln;
    char *st;
} parts_t;

static void parts_free(parts_t *pt) {
    if (pt->views)
        for (Py_ssize_t j = 0; j < 3 * pt->np; j++)
            if (pt->views[j].obj) PyBuffer_Release(&pt->views[j]);
    PyMem_Free(pt->views);
    PyMem_Free(pt->sp);
    PyMem_Free(pt->ln);
    PyMem_Free(pt->st);
    memset(pt, 0, sizeof(*pt));
}

static int parts_open(PyObject *parts, const char *who, parts_t *pt) {
    memset(pt, 0, sizeof(*pt));
    if (!PyList_Check(parts)) {
        PyErr_Format(PyExc_TypeError, "%s: parts must be a list", who);
        return -1;
    }
    Py_ssize_t np_ = PyList_GET_SIZE(parts), n = 0, k = 0;
    pt->np = np_;
    pt->views = PyMem_Calloc((size_t)(3 * np_ + 1), sizeof(Py_buffer));
    Py_ssize_t *bits = PyMem_Calloc((size_t)(np_ + 1), sizeof(Py_ssize_t));
    char *has_valid = PyMem_Calloc((size_t)(np_ + 1), 1);
    if (!pt->views || !bits || !has_valid) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t p = 0; p < np_; p++) {
        PyObject *t = PyList_GET_ITEM(parts, p);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 4) {
            PyErr_Format(PyExc_TypeError, "%s: parts are (offsets, data, validity, bit) tuples", who);
            goto fail;
        }
        bits[p] = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 3));
        if (bits[p] < 0) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "%s: bad bit offset", who);
            goto fail;
        }
        for (int b = 0; b < 3; b++) {
            PyObject *o = PyTuple_GET_ITEM(t, b);
            if (b == 2 && o == Py_None) continue;
            if (PyObject_GetBuffer(o, &pt->views[3 * p + b], PyBUF_SIMPLE) < 0) goto fail;
            if (b == 2) has_valid[p] = 1;
        }
        Py_ssize_t m = pt->views[3 * p].len / 4 - 1;
        if (pt->views[3 * p].len < 4 || pt->views[3 * p].len % 4 ||
            (has_valid[p] && pt->views[3 * p + 2].len * 8 < bits[p] + m)) {
            PyErr_Format(PyExc_ValueError, "%s: bad offsets or validity", who);
            goto fail;
        }
        n += m;
    }
    if (spans_new(n, &pt->sp, &pt->ln, &pt->st) < 0) goto fail;
    pt->n = n;
    for (Py_ssize_t p = 0; p < np_; p++) {
        const int32_t *off = pt->views[3 * p].buf;
        Py_ssize_t m = pt->views[3 * p].len / 4 - 1, size = pt->views[3 * p + 1].len;
        const char *data = pt->views[3 * p + 1].buf;
        const uint8_t *vb = has_valid[p] ? pt->views[3 * p + 2].buf : NULL;
        for (Py_ssize_t i = 0; i < m; i++, k++) {
            Py_ssize_t bit = bits[p] + i;
            int32_t a = off[i], b = off[i + 1];
            pt->sp[k] = NULL;
            pt->ln[k] = 0;
            if (vb && !((vb[bit >> 3] >> (bit & 7)) & 1))
                pt->st[k] = 1;
            else if (a >= 0 && b >= a && b <= size) {
                pt->st[k] = 0;
                pt->sp[k] = data + a;
                pt->ln[k] = b - a;
            } else
                pt->st[k] = 2; /* not a valid array: the Python rule decides */
        }
    }
    PyMem_Free(bits);
    PyMem_Free(has_valid);
    return 0;
fail:
    PyMem_Free(bits);
    PyMem_Free(has_valid);
    parts_free(pt);
    return -1;
}

/* decode_j of the values of Arrow binary arrays (parts_open), their nulls left out. */
static PyObject *decode_j_arrow(PyObject *self, PyObject *args) {
    PyObject *parts;
    long long seg_max, max_bytes;
    parts_t pt;
    if (!PyArg_ParseTuple(args, "O!LL", &PyList_Type, &parts, &seg_max, &max_bytes)) return NULL;
    if (parts_open(parts, "decode_j_arrow", &pt) < 0) return NULL;
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < pt.n; i++) {
        if (pt.st[i] == 1) continue;
        pt.sp[k] = pt.sp[i];
        pt.ln[k] = pt.ln[i];
        pt.st[k] = 2; /* 0 once decoded */
        k++;
    }
    PyObject *out = decode_spans(k, pt.sp, pt.ln, pt.st, seg_max, max_bytes);
    parts_free(&pt);
    return out;
}

/* ---------------------------------------------------------------- K_S and K_z1 (JSON text) */

/* The length of the strict UTF-8 sequence at s (a lead byte >= 0x80), 0 when it is not one. */
static inline int utf8_seq(const unsigned char *s, const unsigned char *e, uint32_t *cp) {
    unsigned c = s[0];
    int k;
    uint32_t v, lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) k = 2, v = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) {
        k = 3, v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4, v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (e - s < k || s[1] < lo || s[1] > hi) return 0;
    for (int j = 1; j < k; j++) {
        if ((s[j] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[j] & 0x3F);
    }
    *cp = v;
    return k;
}

static inline int hex4(const char *s, const char *e, uint32_t *out) {
    uint32_t v = 0;
    if (e - s < 4) return 0;
    for (int j = 0; j < 4; j++) {
        char c = s[j];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static inline char *put_utf8(char *p, uint32_t cp) {
    if (cp < 0x80) *p++ = (char)cp;
    else if (cp < 0x800) *p++ = (char)(0xC0 | (cp >> 6)), *p++ = (char)(0x80 | (cp & 0x3F));
    else if (cp < 0x10000)
        *p++ = (char)(0xE0 | (cp >> 12)), *p++ = (char)(0x80 | ((cp >> 6) & 0x3F)), *p++ = (char)(0x80 | (cp & 0x3F));
    else
        *p++ = (char)(0xF0 | (cp >> 18)), *p++ = (char)(0x80 | ((cp >> 12) & 0x3F)),
        *p++ = (char)(0x80 | ((cp >> 6) & 0x3F)), *p++ = (char)(0x80 | (cp & 0x3F));
    return p;
}

/* The JSON string at s (*s == '"'): the end past its closing quote, its text unescaped to *out (when out is
 * not NULL: room for the raw length, which the text never passes); NULL when it is not a string this
 * reader decides (raw control characters, invalid UTF-8, a lone surrogate escape, bad escapes). */
static const char *json_str(const char *s, const char *e, char **out) {
    const unsigned char *p = (const unsigned char *)s + 1, *ue = (const unsigned char *)e;
    char *o = out ? *out : NULL;
    for (;;) {
        const unsigned char *run = p;
        while (p < ue && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
        if (o && p > run) {
            memcpy(o, run, (size_t)(p - run));
            o += p - run;
        }
        if (p >= ue || *p < 0x20) return NULL;
        if (*p == '"') break;
        if (*p >= 0x80) {
            uint32_t cp;
            int k = utf8_seq(p, ue, &cp);
            if (!k) return NULL;
            if (o) memcpy(o, p, (size_t)k), o += k;
            p += k;
            continue;
        }
        if (ue - p < 2) return NULL; /* a backslash */
        char r;
        switch (p[1]) {
        case '"': r = '"'; break;
        case '\\': r = '\\'; break;
        case '/': r = '/'; break;
        case 'b': r = '\b'; break;
        case 'f': r = '\f'; break;
        case 'n': r = '\n'; break;
        case 'r': r = '\r'; break;
        case 't': r = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (!hex4((const char *)p + 2, e, &cp)) return NULL;
            p += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return NULL;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (ue - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4((const char *)p + 2, e, &lo) || lo < 0xDC00 ||
                    lo > 0xDFFF)
                    return NULL;
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (o) o = put_utf8(o, cp);
            continue;
        }
        default: return NULL;
        }
        if (o) *o++ = r;
        p += 2;
    }
    if (out) *out = o;
    return (const char *)p + 1;
}

#define DIGIT(c) ((c) >= '0' && (c) <= '9')

/* The JSON number at s: its end, or NULL. *plain: an integer without sign, fraction or exponent. */
static const char *json_num(const char *s, const char *e, int *plain) {
    const char *p = s;
    *plain = 1;
    if (p < e && *p == '-') p++, *plain = 0;
    if (p >= e) return NULL;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9')
        while (p < e && DIGIT(*p)) p++;
    else
        return NULL;
    if (p < e && *p == '.') {
        p++, *plain = 0;
        if (p >= e || !DIGIT(*p)) return NULL;
        while (p < e && DIGIT(*p)) p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++, *plain = 0;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || !DIGIT(*p)) return NULL;
        while (p < e && DIGIT(*p)) p++;
    }
    return p;
}

/* A finite number without sign as a double (strtod: correctly rounded, as Python's float); 0 when it is one
 * this reader leaves to Python (a sign, over 18 integer digits, a long or extreme token). */
static int json_double(const char *s, const char *e, int plain, double *out) {
    char tmp[40];
    Py_ssize_t n = e - s;
    if (*s == '-' || n > 32 || (plain && n > 18)) return 0;
    memcpy(tmp, s, (size_t)n);
    tmp[n] = 0;
    errno = 0;
    char *end;
    double v = strtod(tmp, &end);
    if (end != tmp + n || errno || !isfinite(v) || (v == 0 && !plain && strpbrk(tmp, "123456789"))) return 0;
    *out = v;
    return 1;
}

static const char *json_skip(const char *s, const char *e, int depth);

/* The members of the JSON object or array at s ('{' or '['), skipped: the end past it, or NULL. */
static const char *json_skip_items(const char *s, const char *e, int depth) {
    char close = *s == '{' ? '}' : ']';
    if (depth > 32) return NULL;
    s = skip_ws(s + 1, e);
    if (s < e && *s == close) return s + 1;
    for (;;) {
        if (close == '}') {
            if (s >= e || *s != '"' || !(s = json_str(s, e, NULL))) return NULL;
            s = skip_ws(s, e);
            if (s >= e || *s != ':') return NULL;
            s++;
        }
        if (!(s = json_skip(s, e, depth + 1))) return NULL;
        s = skip_ws(s, e);
        if (s < e && *s == ',') {
            s = skip_ws(s + 1, e);
            continue;
        }
        return s < e && *s == close ? s + 1 : NULL;
    }
}

/* Any JSON value at s (after white space), skipped: its end, or NULL when it is not one this reader decides
 * (numbers: at most 18 integer digits and 32 characters, an exponent of at most 3 digits). */
static const char *json_skip(const char *s, const char *e, int depth) {
    s = skip_ws(s, e);
    if (s >= e) return NULL;
    switch (*s) {
    case '"': return json_str(s, e, NULL);
    case '{':
    case '[': return json_skip_items(s, e, depth);
    case 't': return e - s >= 4 && !memcmp(s, "true", 4) ? s + 4 : NULL;
    case 'f': return e - s >= 5 && !memcmp(s, "false", 5) ? s + 5 : NULL;
    case 'n': return e - s >= 4 && !memcmp(s, "null", 4) ? s + 4 : NULL;
    default: {
        int plain;
        const char *p = json_num(s, e, &plain), *x;
        if (!p || p - s > 32) return NULL;
        for (x = s; x < p && *x != 'e' && *x != 'E'; x++)
            ;
        if ((x == p && p - s > 19) || (x < p && p - x > 5)) return NULL; /* e, sign, 3 digits */
        return p;
    }
    }
}

#define S_FIELDS_MAX 16
enum { S_TEXT = 0, S_TEXT_OR_UINT = 1, S_NUMBER = 2 };

/* One K_S as the JSON object this reader decides: every field of names present once, text fields as strings
 * (S_TEXT_OR_UINT: or an unsigned integer of at most 18 digits, written as text), numbers as finite
 * non-negative numbers; other members skipped. Text goes to out[f] (room for len bytes each), numbers to
 * num[f]. 0, or -1 when the Python rule decides the value. */
static int parse_s(const char *s, Py_ssize_t len, int nf, const char *const *nm, const Py_ssize_t *nml,
                   const char *kinds, char **out, double *num) {
    const char *e = s + len;
    unsigned seen = 0;
    s = skip_ws(s, e);
    if (s >= e || *s != '{') return -1;
    s = skip_ws(s + 1, e);
    for (;;) {
        if (s >= e || *s != '"') return -1;
        const char *k0 = s + 1, *ke = json_str(s, e, NULL);
        if (!ke) return -1;
        Py_ssize_t kl = ke - 1 - k0;
        int f = -1;
        if (!memchr(k0, '\\', (size_t)kl)) /* an escaped name: the Python rule */
            for (int j = 0; j < nf; j++)
                if (nml[j] == kl && !memcmp(nm[j], k0, (size_t)kl)) f = j;
        if (f < 0 && memchr(k0, '\\', (size_t)kl)) return -1;
        s = skip_ws(ke, e);
        if (s >= e || *s != ':') return -1;
        s = skip_ws(s + 1, e);
        if (f < 0) {
            if (!(s = json_skip(s, e, 0))) return -1;
        } else {
            if (seen & (1u << f)) return -1;
            seen |= 1u << f;
            if (s >= e) return -1;
            int plain;
            const char *p;
            if (kinds[f] != S_NUMBER && *s == '"') {
                if (!(s = json_str(s, e, &out[f]))) return -1;
            } else if (kinds[f] == S_TEXT_OR_UINT && DIGIT(*s)) {
                if (!(p = json_num(s, e, &plain)) || !plain || p - s > 18) return -1;
                memcpy(out[f], s, (size_t)(p - s));
                out[f] += p - s;
                s = p;
            } else if (kinds[f] == S_NUMBER && DIGIT(*s)) {
                if (!(p = json_num(s, e, &plain)) || !json_double(s, p, plain, &num[f])) return -1;
                s = p;
            } else
                return -1;
        }
        s = skip_ws(s, e);
        if (s < e && *s == ',') {
            s = skip_ws(s + 1, e);
            continue;
        }
        if (s >= e || *s != '}') return -1;
        s = skip_ws(s + 1, e);
        break;
    }
    return s == e && seen == (nf == 32 ? ~0u : (1u << nf) - 1) ? 0 : -1;
}

/* decode_s_arrow(parts, names, kinds, max_len) -> (status, [field, ...])
 *     K_S values of Arrow binary arrays (parts as decode_j_arrow takes, nulls kept): status per value 0
 *     (decoded), 1 (null), 2 (left to the Python rule: see parse_s; also longer than max_len). A field is
 *     (offsets, data), the buffers of an Arrow string array (int32 offsets; empty where not decoded), or for
 *     kind S_NUMBER the bytes of a float64 per value (NaN where not decoded). */
static PyObject *decode_s_arrow(PyObject *self, PyObject *args) {
    PyObject *parts, *names, *status = NULL, *fields = NULL, *result = NULL;
    const char *kinds;
    Py_ssize_t nk;
    long long max_len;
    parts_t pt;
    if (!PyArg_ParseTuple(args, "O!O!y#L", &PyList_Type, &parts, &PyTuple_Type, &names, &kinds, &nk, &max_len))
        return NULL;
    int nf = (int)PyTuple_GET_SIZE(names);
    if (nf != nk || nf < 1 || nf > S_FIELDS_MAX) {
        PyErr_SetString(PyExc_ValueError, "decode_s_arrow: 1 to 16 names, one kind each");
        return NULL;
    }
    const char *nm[S_FIELDS_MAX];
    Py_ssize_t nml[S_FIELDS_MAX];
    for (int f = 0; f < nf; f++) {
        PyObject *o = PyTuple_GET_ITEM(names, f);
        if (!PyBytes_Check(o) || kinds[f] < S_TEXT || kinds[f] > S_NUMBER) {
            PyErr_SetString(PyExc_TypeError, "decode_s_arrow: names are bytes, kinds 0, 1 or 2");
            return NULL;
        }
        nm[f] = PyBytes_AS_STRING(o);
        nml[f] = PyBytes_GET_SIZE(o);
    }
    if (parts_open(parts, "decode_s_arrow", &pt) < 0) return NULL;
    Py_ssize_t n = pt.n;
    buf_t data[S_FIELDS_MAX];
    int32_t *offs[S_FIELDS_MAX];
    double *nums[S_FIELDS_MAX];
    PyObject *objs[S_FIELDS_MAX];
    memset(data, 0, sizeof(data));
    memset(objs, 0, sizeof(objs));
    status = PyBytes_FromStringAndSize(NULL, n ? n : 1);
    if (!status) goto done;
    char *st = PyBytes_AS_STRING(status);
    for (int f = 0; f < nf; f++) {
        objs[f] = PyBytes_FromStringAndSize(NULL, kinds[f] == S_NUMBER ? 8 * n : 4 * (n + 1));
        if (!objs[f]) goto done;
        offs[f] = (int32_t *)PyBytes_AS_STRING(objs[f]);
        nums[f] = (double *)PyBytes_AS_STRING(objs[f]);
        if (kinds[f] != S_NUMBER) offs[f][0] = 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        char *out[S_FIELDS_MAX];
        double num[S_FIELDS_MAX];
        int ok = pt.st[i] == 0 && pt.ln[i] <= max_len;
        for (int f = 0; ok && f < nf; f++) {
            if (kinds[f] == S_NUMBER) continue;
            if (buf_reserve(&data[f], pt.ln[i]) < 0) goto done;
            if (data[f].n + pt.ln[i] > INT32_MAX) ok = 0;
            out[f] = data[f].p + data[f].n;
        }
        ok = ok && parse_s(pt.sp[i], pt.ln[i], nf, nm, nml, kinds, out, num) == 0;
        st[i] = ok ? 0 : pt.st[i] == 1 ? 1 : 2;
        for (int f = 0; f < nf; f++) {
            if (kinds[f] == S_NUMBER) {
                nums[f][i] = ok ? num[f] : Py_NAN;
                continue;
            }
            if (ok) data[f].n = out[f] - data[f].p;
            offs[f][i + 1] = (int32_t)data[f].n;
        }
    }
    if (!(fields = PyList_New(nf))) goto done;
    for (int f = 0; f < nf; f++) {
        PyObject *item = objs[f];
        if (kinds[f] != S_NUMBER) {
            PyObject *d = buf_bytes(&data[f]);
            item = d ? PyTuple_Pack(2, objs[f], d) : NULL;
            Py_XDECREF(d);
            if (!item) goto done;
        } else
            Py_INCREF(item);
        PyList_SET_ITEM(fields, f, item);
    }
    if (_PyBytes_Resize(&status, n) == 0) result = PyTuple_Pack(2, status, fields);
done:
    for (int f = 0; f < nf; f++) {
        PyMem_Free(data[f].p);
        Py_XDECREF(objs[f]);
    }
    Py_XDECREF(status);
    Py_XDECREF(fields);
    parts_free(&pt);
    return result;
}

/* json_text_arrow(parts) -> (status, offsets, data)
 *     Per value of Arrow binary arrays (nulls kept) its text as ujson.dumps writes a str (ASCII only: '"', '\\'
 *     and '/' escaped, \b \f \n \r \t, other control characters and every non-ASCII character as lowercase
 *     \uXXXX, surrogate pairs beyond the BMP), as an Arrow string array's buffers; status 0, 1 (null: empty)
 *     or 2 (not valid UTF-8: empty; Python decodes it with replacement). */
static PyObject *json_text_arrow(PyObject *self, PyObject *args) {
    static const char hex[] = "0123456789abcdef";
    PyObject *parts, *status = NULL, *offsets = NULL, *result = NULL;
    parts_t pt;
    buf_t data = {0};
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &parts)) return NULL;
    if (parts_open(parts, "json_text_arrow", &pt) < 0) return NULL;
    Py_ssize_t n = pt.n;
    status = PyBytes_FromStringAndSize(NULL, n ? n : 1);
    offsets = PyBytes_FromStringAndSize(NULL, 4 * (n + 1));
    if (!status || !offsets) goto done;
    char *st = PyBytes_AS_STRING(status);
    int32_t *off = (int32_t *)PyBytes_AS_STRING(offsets);
    off[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        st[i] = pt.st[i];
        if (pt.st[i] == 0 && buf_reserve(&data, 6 * pt.ln[i] + 2) < 0) goto done;
        if (pt.st[i] == 0 && data.n + 6 * pt.ln[i] + 2 > INT32_MAX) st[i] = 2;
        if (st[i]) {
            off[i + 1] = (int32_t)data.n;
            continue;
        }
        const unsigned char *p = (const unsigned char *)pt.sp[i], *e = p + pt.ln[i];
        char *o = data.p + data.n;
        *o++ = '"';
        while (p < e) {
            unsigned c = *p;
            uint32_t cp;
            if (c >= 0x80) {
                int k = utf8_seq(p, e, &cp);
                if (!k) break;
                p += k;
                if (cp >= 0x10000) {
                    uint32_t hi = 0xD800 + ((cp - 0x10000) >> 10), lo = 0xDC00 + ((cp - 0x10000) & 0x3FF);
                    *o++ = '\\', *o++ = 'u', *o++ = hex[hi >> 12], *o++ = hex[(hi >> 8) & 15], *o++ = hex[(hi >> 4) & 15],
                    *o++ = hex[hi & 15];
                    cp = lo;
                }
                *o++ = '\\', *o++ = 'u', *o++ = hex[cp >> 12], *o++ = hex[(cp >> 8) & 15], *o++ = hex[(cp >> 4) & 15],
                *o++ = hex[cp & 15];
                continue;
            }
            p++;
            switch (c) {
            case '"': *o++ = '\\', *o++ = '"'; break;
            case '\\': *o++ = '\\', *o++ = '\\'; break;
            case '/': *o++ = '\\', *o++ = '/'; break;
            case '\b': *o++ = '\\', *o++ = 'b'; break;
            case '\f': *o++ = '\\', *o++ = 'f'; break;
            case '\n': *o++ = '\\', *o++ = 'n'; break;
            case '\r': *o++ = '\\', *o++ = 'r'; break;
            case '\t': *o++ = '\\', *o++ = 't'; break;
            default:
                if (c < 0x20) *o++ = '\\', *o++ = 'u', *o++ = '0', *o++ = '0', *o++ = hex[c >> 4], *o++ = hex[c & 15];
                else *o++ = (char)c;
            }
        }
        if (p < e) st[i] = 2; /* invalid UTF-8: nothing kept */
        else {
            *o++ = '"';
            data.n = o - data.p;
        }
        off[i + 1] = (int32_t)data.n;
    }
    PyObject *d = buf_bytes(&data);
    if (d && _PyBytes_Resize(&status, n) == 0) result = PyTuple_Pack(3, status, offsets, d);
    Py_XDECREF(d);
done:
    PyMem_Free(data.p);
    Py_XDECREF(status);
    Py_XDECREF(offsets);
    parts_free(&pt);
    return result;
}

/* hash_binary(parts) -> bytes of a uint64 per value of Arrow binary arrays (parts as decode_j_arrow takes;
 *     nulls: 0): a 64-bit hash of the value's bytes (8 bytes at a time, multiply and xor-shift, then the
 *     splitmix64 finaliser), for deduplicating keys; equal values have equal hashes, and the caller compares
 *     the values whose hashes collide. */
static PyObject *hash_binary(PyObject *self, PyObject *args) {
    PyObject *parts, *out;
    parts_t pt;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &parts)) return NULL;
    if (parts_open(parts, "hash_binary", &pt) < 0) return NULL;
    out = PyBytes_FromStringAndSize(NULL, 8 * pt.n);
    if (out) {
        uint64_t *h = (uint64_t *)PyBytes_AS_STRING(out);
        for (Py_ssize_t i = 0; i < pt.n; i++) {
            const unsigned char *p = (const unsigned char *)pt.sp[i];
            Py_ssize_t n = pt.ln[i], j = 0;
            uint64_t x = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
            if (pt.st[i]) {
                h[i] = pt.st[i] == 1 ? 0 : 1;
                continue;
            }
            for (; j + 8 <= n; j += 8) {
                uint64_t w;
                memcpy(&w, p + j, 8);
                x = (x ^ w) * 0xBF58476D1CE4E5B9ULL;
                x ^= x >> 31;
            }
            uint64_t w = 0;
            for (int k = 0; j < n; j++, k += 8) w |= (uint64_t)p[j] << k;
            x = (x ^ w) * 0x94D049BB133111EBULL;
            x ^= x >> 30;
            x *= 0xBF58476D1CE4E5B9ULL;
            x ^= x >> 27;
            x *= 0x94D049BB133111EBULL;
            x ^= x >> 31;
            h[i] = x;
        }
    }
    parts_free(&pt);
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
        int64_t g = gid[i], j = jcode[i];
        if (g < 0 || g >= len[5] || j < 0 || j >= nj || offsets[j] < 0 || lengths[j] < 0 ||
            offsets[j] + lengths[j] > len[4]) {
            ok = 0;
            break;
        }
        if (!lengths[j]) continue;
        int32_t lo = INT32_MAX, top = INT32_MIN; /* without a branch per entry: the loop is vectorised */
        for (int64_t e = offsets[j], stop = offsets[j] + lengths[j]; e < stop; e++) {
            lo = segs[e] < lo ? segs[e] : lo;
            top = segs[e] > top ? segs[e] : top;
        }
        if (lo < 1 || top > max_seg) {
            ok = 0;
            break;
        }
        if (top + 1 > need[g]) need[g] = top + 1;
    }
    for (int k = 0; k < got; k++) PyBuffer_Release(&v[k]);
    return PyLong_FromLong(ok ? 0 : -1);
fail:
    for (int k = 0; k < got; k++) PyBuffer_Release(&v[k]);
    return NULL;
}

/* heat[off[g] + s] += count, plays[off[g] + s] += 1 for every K_J entry (s, count) of every play (group g),
 * in int32 cells; the blocks were made large enough by sums_need (checked again: ValueError, nothing added).
 * Returns 0, or -1 when a cell would pass 2**31 - 1: everything added by this call is taken back first. */
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
    /* one pass: each index checked as it is reached; on a bad one, what this call added is taken back */
    int err = 0;
    Py_ssize_t i = 0;
    int64_t e = 0;
    for (; i < n; i++) {
        int64_t g = gid[i], j = jcode[i];
        if (g < 0 || g >= len[6] || j < 0 || j >= nj || offsets[j] < 0 || lengths[j] < 0 ||
            offsets[j] + lengths[j] > len[4]) {
            err = 1;
            break;
        }
        int64_t base = off[g], stop = offsets[j] + lengths[j];
        for (e = offsets[j]; e < stop; e++) {
            int64_t c = base + segs[e];
            if (c < 0 || c >= cells || cnts[e] < 0) {
                err = 2;
                break;
            }
            if ((int64_t)heat[c] + cnts[e] > 2147483647LL || plays[c] == 2147483647) {
                err = 3;
                break;
            }
            heat[c] += cnts[e];
            plays[c]++;
        }
        if (err) break;
    }
    if (err == 1 && i > 0)
        sums_undo(gid, jcode, offsets, lengths, off, segs, cnts, heat, plays, i - 1,
                  offsets[jcode[i - 1]] + lengths[jcode[i - 1]]);
    else if (err > 1)
        sums_undo(gid, jcode, offsets, lengths, off, segs, cnts, heat, plays, i, e);
    if (err == 1 || err == 2) {
        PyErr_SetString(PyExc_ValueError, err == 1 ? "sums_add: code out of range" : "sums_add: cell out of range");
        goto fail;
    }
    status = err ? -1 : 0;
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

/* Where the scan of count MGET replies stands (resp_mget's optional state: the scan resumes there, so a reply
 * read in many receives is scanned once, not once per receive): reply k, its element i, the offset cur of
 * the next thing to read, the reply's n and size so far; per complete reply its start, n (-1: an error
 * reply) and size. */
typedef struct {
    int64_t k, i, cur, n, size, started;
    int64_t starts[16], ns[16], sizes[16];
} scan_t;

/* Scans on from s: 1 when the count replies are complete, 0 when not (or *bad: a protocol error). */
static int resp_scan(const char *base, const char *end, scan_t *s, int count, int *bad) {
    while (s->k < count) {
        const char *p = base + s->cur;
        if (!s->started) {
            if (p >= end) return 0;
            s->starts[s->k] = s->cur;
            if (*p == '-') {
                const char *q = memchr(p, '\n', (size_t)(end - p));
                if (!q) return 0;
                s->ns[s->k] = -1;
                s->sizes[s->k] = 0;
                s->cur = q + 1 - base;
                s->k++;
                continue;
            }
            if (*p != '*') {
                *bad = 1;
                return 0;
            }
            int64_t n;
            if (!(p = resp_int(p + 1, end, &n, bad))) return 0;
            if (n < 0) {
                *bad = 1;
                return 0;
            }
            s->n = n, s->size = 0, s->i = 0, s->started = 1, s->cur = p - base;
        }
        for (; s->i < s->n; s->i++) {
            p = base + s->cur;
            if (p >= end) return 0;
            if (*p == '_') { /* RESP3 null */
                if (p + 3 > end) return 0;
                s->cur += 3;
                continue;
            }
            if (*p != '$') {
                *bad = 1;
                return 0;
            }
            int64_t len;
            if (!(p = resp_int(p + 1, end, &len, bad))) return 0;
            if (len >= 0) {
                if (end - p < len + 2) return 0;
                if (p[len] != '\r' || p[len + 1] != '\n') {
                    *bad = 1;
                    return 0;
                }
                p += len + 2;
                s->size += len;
            }
            s->cur = p - base;
        }
        s->ns[s->k] = s->n;
        s->sizes[s->k] = s->size;
        s->started = 0;
        s->k++;
    }
    return 1;
}

static PyObject *resp_mget(PyObject *self, PyObject *args) {
    Py_buffer view, sv = {0};
    Py_ssize_t pos, filled;
    int count;
    PyObject *state = Py_None;
    if (!PyArg_ParseTuple(args, "y*nni|O", &view, &pos, &filled, &count, &state)) return NULL;
    PyObject *result = NULL, *items = NULL;
    const char *base = view.buf, *end = base + (filled < view.len ? filled : view.len);
    scan_t local, *s = &local;
    int bad = 0;
    if (count < 1 || count > 16 || pos < 0 || pos > end - base) {
        PyErr_SetString(PyExc_ValueError, "resp_mget: bad arguments");
        goto done;
    }
    memset(&local, 0, sizeof(local));
    local.cur = pos;
    if (state != Py_None) {
        if (PyObject_GetBuffer(state, &sv, PyBUF_WRITABLE) < 0) goto done;
        if (sv.len < (Py_ssize_t)sizeof(scan_t)) {
            PyErr_SetString(PyExc_ValueError, "resp_mget: the state is too small");
            goto done;
        }
        s = sv.buf;
        if (s->k == 0 && !s->started && s->cur == 0) s->cur = pos; /* a new scan (all zeros) */
        if (s->cur < pos || s->cur > end - base || s->k < 0 || s->k > count) {
            PyErr_SetString(PyExc_ValueError, "resp_mget: the state does not fit the buffer");
            goto done;
        }
    }
    if (!resp_scan(base, end, s, count, &bad)) { /* all replies complete first: the scan only hops over headers */
        if (bad == 1)
            PyErr_SetString(PyExc_ValueError, "not a Redis MGET reply");
        else {
            Py_INCREF(Py_None);
            result = Py_None;
        }
        goto done;
    }
    items = PyList_New(count);
    if (!items) goto done;
    for (int k = 0; k < count; k++) {
        const char *q = base + s->starts[k];
        PyObject *item;
        if (s->ns[k] < 0) {
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            Py_ssize_t len = nl - q - 1;
            if (len > 0 && q[len] == '\r') len--;
            item = Py_BuildValue("(sy#)", "err", q + 1, len);
        } else {
            int64_t n = s->ns[k], at = 0, nulls = 0, len;
            int wide = s->sizes[k] > 2147483647LL;
            PyObject *valid = PyBytes_FromStringAndSize(NULL, (n + 7) / 8);
            PyObject *offs = PyBytes_FromStringAndSize(NULL, (n + 1) * (wide ? 8 : 4));
            PyObject *data = PyBytes_FromStringAndSize(NULL, s->sizes[k]);
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
    result = Py_BuildValue("(On)", items, (Py_ssize_t)s->cur);
done:
    Py_XDECREF(items);
    if (sv.obj) PyBuffer_Release(&sv);
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
    {"guess_walk", guess_walk, METH_VARARGS, "The K_J parser's guesses of the next pair, step by step (for tests)."},
    {"pair_bound", pair_bound_py, METH_O, "The pair arrays' room for one value (its '[' less one, at least 1)."},
    {"decode_j_arrow", decode_j_arrow, METH_VARARGS, "decode_j of Arrow binary arrays' buffers."},
    {"decode_s_arrow", decode_s_arrow, METH_VARARGS, "K_S values of Arrow binary arrays -> columns."},
    {"json_text_arrow", json_text_arrow, METH_VARARGS, "Texts of Arrow binary arrays as ujson.dumps writes them."},
    {"hash_binary", hash_binary, METH_VARARGS, "A 64-bit hash per value of Arrow binary arrays."},
    {"segment_sums", segment_sums, METH_VARARGS, "Per (vid rank, segment) heat and plays, sorted."},
    {"sums_need", sums_need, METH_VARARGS, "Per group the block size its plays' segments need."},
    {"sums_add", sums_add, METH_VARARGS, "Plays' K_J entries added into dense per-group blocks."},
    {"resp_mget_command", resp_mget_command, METH_VARARGS, "MGET of keys + suffix, in RESP."},
    {"resp_mget", resp_mget, METH_VARARGS, "Complete MGET replies in a buffer -> Arrow buffers, or None."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastplay", "Plays: C K_J decoder and segment sums.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__fastplay(void) {
#ifdef HAVE_SSE2_64
    carry_init();
#endif
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "RESP_STATE_SIZE", (long)sizeof(scan_t)) < 0) Py_CLEAR(m);
    return m;
}
