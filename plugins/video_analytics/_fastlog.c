/* Online time (CONTRACT §1) in one pass: a log-line parser and a streaming per-user rule
 * machine. Optional accelerator of video_analytics.online_time (pure NumPy is the fallback and
 * the reference: both must give identical results, see tests/unit/test_online_time_fast.py).
 *
 * parse(data, line_offset, header_allowed, uid, lt, act, line)
 *     parses whole lines exactly as online_time.parse_block does, writing the events into the
 *     given writable buffers (int64, int64, int8, int32; capacity len(data) // 25 + 1) and
 *     returns (events, rejects, rows_in, lines) where rejects is bytes of int64 quadruples
 *     (line index in the block, start offset, end offset, reason 1..6).
 * rules_new(win_start, win_stop, min_gap, timeout, multiplier[, users]) -> state (capsule); users: the
 *     number expected, to size the hash table once
 * rules_feed(state, uid, lt, act) -> -1 when every user's events so far came in non-decreasing
 *     time, else the index of the first event older than its user's previous one (nothing
 *     of the call is applied then, only the events before it).
 * rules_result(state, uid, online, sessions) -> users written (users with an event in the
 *     window; buffers of capacity rules_users(state)), open sessions closed at their last event.
 * rules_users(state) -> users seen.
 * split(uid, lt, act, shards, uid_out, lt_out, act_out, bounds_out) groups the events by
 *     online_time.shard_of (same hash), keeping their order within a shard; shard i is
 *     [bounds[i], bounds[i + 1]).
 * sum_new / sum_feed / rules_users / sum_outside / sum_result: one day's per-user summary (video_analytics.day_summary),
 *     streamed in file order, with the same refusal of a user going back in time.
 * merge_union / comb_feed: a window from its days' summaries, one merge walk per day over the
 *     window's sorted userids (see their comments).
 * Streaming in (file date, line) order equals the (userid, logtime, file date, line) order of the
 * rules for every user whose times never go back, which rules_feed checks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- parsing */

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (m + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static const int DIM[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

static inline int is_sep(unsigned char c) { return c == ' ' || c == '\t' || c == '\r'; }
static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* days since 1970 of a strict YYYY-MM-DD, or INT64_MIN */
static int64_t civil_day(const unsigned char *p) {
    for (int k = 0; k < 10; k++) {
        if (k == 4 || k == 7) {
            if (p[k] != '-') return INT64_MIN;
        } else if (!is_digit(p[k])) {
            return INT64_MIN;
        }
    }
    int y = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    int m = (p[5] - '0') * 10 + (p[6] - '0');
    int d = (p[8] - '0') * 10 + (p[9] - '0');
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m < 1 || m > 12 || d < 1 || d > DIM[m - 1] + (m == 2 && leap)) return INT64_MIN;
    return days_from_civil(y, m, d);
}

typedef struct {
    int64_t *buf;
    Py_ssize_t n, cap;
} vec64;

static int vec_push4(vec64 *v, int64_t a, int64_t b, int64_t c, int64_t d) {
    if (v->n + 4 > v->cap) {
        Py_ssize_t cap = v->cap ? v->cap * 2 : 256;
        int64_t *nb = realloc(v->buf, (size_t)cap * sizeof(int64_t));
        if (!nb) return -1;
        v->buf = nb;
        v->cap = cap;
    }
    v->buf[v->n++] = a;
    v->buf[v->n++] = b;
    v->buf[v->n++] = c;
    v->buf[v->n++] = d;
    return 0;
}

/* the cached date of the block: files hold one or a few dates */
typedef struct {
    unsigned char text[10];
    int64_t day;
    int valid;
} date_cache;

static PyObject *py_parse(PyObject *self, PyObject *args) {
    Py_buffer data, ub, tb, ab, lb;
    Py_ssize_t line_offset;
    int header_allowed;
    if (!PyArg_ParseTuple(args, "y*npw*w*w*w*", &data, &line_offset, &header_allowed, &ub, &tb, &ab, &lb))
        return NULL;
    const unsigned char *s = data.buf;
    Py_ssize_t n = data.len;
    Py_ssize_t cap = n / 25 + 1;
    PyObject *ret = NULL;
    vec64 rej = {NULL, 0, 0};
    if (ub.len < cap * 8 || tb.len < cap * 8 || ab.len < cap || lb.len < cap * 4) {
        PyErr_SetString(PyExc_ValueError, "output buffers too small");
        goto done;
    }
    int64_t *uid = ub.buf, *lt = tb.buf;
    int8_t *act = ab.buf;
    int32_t *lno = lb.buf;
    Py_ssize_t ne = 0, rows_in = 0, lines = 0;
    int oom = 0;
    date_cache dc = {{0}, 0, 0};
    int have_dc = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t i = 0;
    while (i < n) {
        Py_ssize_t start = i;
        const unsigned char *nl = memchr(s + i, '\n', (size_t)(n - i));
        Py_ssize_t end = nl ? nl - s : n; /* line is [start, end) */
        i = end + 1;
        Py_ssize_t idx = lines++;
        /* tokens: runs of bytes that are not space, tab or CR */
        Py_ssize_t ts[5], te[5];
        int nt = 0;
        Py_ssize_t j = start;
        while (j < end) {
            while (j < end && is_sep(s[j])) j++;
            if (j >= end) break;
            Py_ssize_t a = j;
            while (j < end && !is_sep(s[j])) j++;
            if (nt < 5) {
                ts[nt] = a;
                te[nt] = j;
            }
            nt++;
            if (nt > 4) break; /* more than four: too many, no need to count on */
        }
        if (nt == 0) continue;
        if (idx == 0 && header_allowed && n >= 7 && memcmp(s, "logtime", 7) == 0) continue;
        rows_in++;
        int reason = 0;
        if (nt < 4) {
            reason = 1;
        } else if (nt > 4) {
            reason = 2;
        } else {
            int64_t day = 0;
            int ok_date = te[0] - ts[0] == 10;
            if (ok_date) {
                const unsigned char *p = s + ts[0];
                if (have_dc && memcmp(dc.text, p, 10) == 0) {
                    ok_date = dc.valid;
                    day = dc.day;
                } else {
                    int64_t v = civil_day(p);
                    memcpy(dc.text, p, 10);
                    dc.valid = v != INT64_MIN;
                    dc.day = v;
                    have_dc = 1;
                    ok_date = dc.valid;
                    day = v;
                }
            }
            const unsigned char *p = s + ts[1];
            int ok_time = te[1] - ts[1] == 8 && is_digit(p[0]) && is_digit(p[1]) && p[2] == ':' && is_digit(p[3]) &&
                          is_digit(p[4]) && p[5] == ':' && is_digit(p[6]) && is_digit(p[7]);
            int64_t secs = 0;
            if (ok_time) {
                int hh = (p[0] - '0') * 10 + (p[1] - '0');
                int mi = (p[3] - '0') * 10 + (p[4] - '0');
                int ss = (p[6] - '0') * 10 + (p[7] - '0');
                ok_time = hh < 24 && mi < 60 && ss < 60;
                secs = hh * 3600 + mi * 60 + ss;
            }
            Py_ssize_t ul = te[2] - ts[2];
            int ok_uid = ul <= 18;
            int64_t u = 0;
            for (Py_ssize_t k = ts[2]; ok_uid && k < te[2]; k++) {
                if (!is_digit(s[k])) ok_uid = 0;
                else u = u * 10 + (s[k] - '0');
            }
            Py_ssize_t al = te[3] - ts[3];
            int a = -1;
            if (al >= 3 && al <= 6) {
                char w[7];
                for (Py_ssize_t k = 0; k < al; k++) w[k] = (char)(s[ts[3] + k] | 0x20);
                if (al == 5 && memcmp(w, "login", 5) == 0) a = 0;
                else if (al == 6 && memcmp(w, "logout", 6) == 0) a = 1;
                else if (al == 3 && memcmp(w, "get", 3) == 0) a = 2;
                else if (al == 4 && memcmp(w, "post", 4) == 0) a = 3;
            }
            if (!ok_date) reason = 3;
            else if (!ok_time) reason = 4;
            else if (!ok_uid) reason = 5;
            else if (a < 0) reason = 6;
            else {
                uid[ne] = u;
                lt[ne] = day * 86400 + secs;
                act[ne] = (int8_t)a;
                lno[ne] = (int32_t)(idx + line_offset + 1);
                ne++;
            }
        }
        if (reason && vec_push4(&rej, idx, start, end, reason)) {
            oom = 1;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    if (oom) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *rb = PyBytes_FromStringAndSize((const char *)rej.buf, rej.n * (Py_ssize_t)sizeof(int64_t));
    if (rb) ret = Py_BuildValue("nNnn", ne, rb, rows_in, lines);
done:
    free(rej.buf);
    PyBuffer_Release(&data);
    PyBuffer_Release(&ub);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&ab);
    PyBuffer_Release(&lb);
    return ret;
}

/* ---------------------------------------------------------------- streaming rules */

#define EMPTY UINT64_MAX

typedef struct {
    uint64_t key;
    int64_t prev_t, cur, total, sessions;
    uint8_t open, marked, present, seen;
    /* day summaries only (sum_*): total and sessions are then the day's closed sessions */
    int64_t first_t, head_add;
    int8_t first_act;
    uint8_t head_alive, head_post;
} user_state;

typedef struct {
    user_state *slots;
    size_t cap, used;
    int64_t ws, we, min_gap, timeout, mult;
    int64_t outside; /* sum_feed: events outside their day, counted and left out */
} rules_state;

static inline uint64_t mix(uint64_t x) {
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static void rules_free(PyObject *cap) {
    rules_state *st = PyCapsule_GetPointer(cap, "video_analytics._fastlog.rules");
    if (st) {
        free(st->slots);
        free(st);
    }
}

static int rules_alloc(rules_state *st, size_t cap) {
    user_state *sl = malloc(cap * sizeof(user_state));
    if (!sl) return -1;
    for (size_t k = 0; k < cap; k++) sl[k].key = EMPTY;
    st->slots = sl;
    st->cap = cap;
    return 0;
}

static inline user_state *rules_find(rules_state *st, uint64_t key) {
    size_t mask = st->cap - 1, h = mix(key) & mask;
    for (;;) {
        user_state *u = &st->slots[h];
        if (u->key == key) return u;
        if (u->key == EMPTY) return u;
        h = (h + 1) & mask;
    }
}

static int rules_grow(rules_state *st) {
    user_state *old = st->slots;
    size_t oc = st->cap;
    if (rules_alloc(st, oc * 2)) {
        st->slots = old;
        st->cap = oc;
        return -1;
    }
    for (size_t k = 0; k < oc; k++)
        if (old[k].key != EMPTY) *rules_find(st, old[k].key) = old[k];
    free(old);
    return 0;
}

static PyObject *py_rules_new(PyObject *self, PyObject *args) {
    long long ws, we, min_gap, timeout, mult;
    Py_ssize_t users = 0; /* optional: the users expected, to size the table once */
    if (!PyArg_ParseTuple(args, "LLLLL|n", &ws, &we, &min_gap, &timeout, &mult, &users)) return NULL;
    size_t cap0 = 1 << 12;
    while (cap0 < (size_t)users * 2 && cap0 < ((size_t)1 << 24)) cap0 <<= 1;
    rules_state *st = calloc(1, sizeof(rules_state));
    if (!st || rules_alloc(st, cap0)) {
        free(st);
        return PyErr_NoMemory();
    }
    st->ws = ws;
    st->we = we;
    st->min_gap = min_gap;
    st->timeout = timeout;
    st->mult = mult;
    PyObject *cap = PyCapsule_New(st, "video_analytics._fastlog.rules", rules_free);
    if (!cap) {
        free(st->slots);
        free(st);
    }
    return cap;
}

static inline void close_session(user_state *u, int64_t mult) {
    u->total += u->marked ? u->cur * mult : u->cur;
    u->sessions += u->cur > 0;
    u->open = 0;
    u->cur = 0;
    u->marked = 0;
}

/* One event of a user already in the table, in the window rules (rules_feed). */
static inline void rules_event(const rules_state *st, user_state *u, int64_t t, int a) {
    int inw = t >= st->ws && t < st->we;
    u->present |= inw;
    if (a == 0) {
        if (u->open) close_session(u, st->mult);
        u->open = 1;
    } else if (u->open) {
        int64_t gap = t - u->prev_t;
        if (gap > st->timeout) {
            close_session(u, st->mult);
        } else {
            if (inw && gap >= st->min_gap) u->cur += gap;
            if (a == 3) u->marked = 1;
            else if (a == 1) close_session(u, st->mult);
        }
    }
    u->prev_t = t;
    u->seen = 1;
}

/* One event of the day being summarised (sum_feed); t is seconds into the day. A user's first event
 * starts the head (a session carried into the day) or, a login, the day's own sessions. */
static inline void sum_event(const rules_state *st, user_state *u, int64_t t, int a) {
    if (!u->seen) {
        u->first_t = t;
        u->first_act = (int8_t)a;
        u->open = a == 0;
        u->head_alive = a != 0 && a != 1;
        u->head_post = a == 3;
    } else if (a == 0) {
        u->head_alive = 0;
        if (u->open) close_session(u, st->mult);
        u->open = 1;
    } else if (u->head_alive) {
        int64_t gap = t - u->prev_t;
        if (gap > st->timeout) {
            u->head_alive = 0;
        } else {
            if (gap >= st->min_gap) u->head_add += gap;
            if (a == 3) u->head_post = 1;
            else if (a == 1) u->head_alive = 0;
        }
    } else if (u->open) {
        int64_t gap = t - u->prev_t;
        if (gap > st->timeout) {
            close_session(u, st->mult);
        } else {
            if (gap >= st->min_gap) u->cur += gap;
            if (a == 3) u->marked = 1;
            else if (a == 1) close_session(u, st->mult);
        }
    }
    u->prev_t = t;
    u->seen = 1;
}

/* rules_feed and sum_feed: events in file order; -1, or the index of the first event older than its
 * user's previous one (the events before it are applied). */
static PyObject *feed_events(PyObject *args, int summary) {
    PyObject *cap;
    Py_buffer ub, tb, ab;
    long long day_start = 0;
    if (summary ? !PyArg_ParseTuple(args, "Oy*y*y*L", &cap, &ub, &tb, &ab, &day_start)
                : !PyArg_ParseTuple(args, "Oy*y*y*", &cap, &ub, &tb, &ab))
        return NULL;
    rules_state *st = PyCapsule_GetPointer(cap, "video_analytics._fastlog.rules");
    Py_ssize_t n = ub.len / 8, bad = -1;
    int oom = 0, bad_key = 0;
    if (!st || tb.len / 8 != n || ab.len != n) {
        if (st) PyErr_SetString(PyExc_ValueError, "uid, lt and act must have the same length");
        PyBuffer_Release(&ub);
        PyBuffer_Release(&tb);
        PyBuffer_Release(&ab);
        return NULL;
    }
    const int64_t *uid = ub.buf, *lt = tb.buf;
    const int8_t *act = ab.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (st->used * 2 >= st->cap && rules_grow(st)) {
            oom = 1;
            break;
        }
        uint64_t key = (uint64_t)uid[i];
        if (key == EMPTY) { /* -1: the table's empty marker; the parser never gives it */
            bad_key = 1;
            break;
        }
        int64_t t = lt[i] - day_start;
        if (summary && (t < 0 || t >= 86400)) {
            st->outside++;
            continue;
        }
        user_state *u = rules_find(st, key);
        if (u->key == EMPTY) {
            memset(u, 0, sizeof(*u));
            u->key = key;
            st->used++;
        }
        if (u->seen && t < u->prev_t) {
            bad = i;
            break;
        }
        if (summary) sum_event(st, u, t, act[i]);
        else rules_event(st, u, t, act[i]);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&ub);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&ab);
    if (oom) return PyErr_NoMemory();
    if (bad_key) {
        PyErr_SetString(PyExc_ValueError, "userid -1 is not a valid userid");
        return NULL;
    }
    return PyLong_FromSsize_t(bad);
}

static PyObject *py_rules_feed(PyObject *self, PyObject *args) { return feed_events(args, 0); }

static PyObject *py_sum_feed(PyObject *self, PyObject *args) { return feed_events(args, 1); }

/* The state of a rules_new / sum_new capsule argument, or NULL with an exception. */
static rules_state *state_arg(PyObject *args) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    return PyCapsule_GetPointer(cap, "video_analytics._fastlog.rules");
}

static PyObject *py_rules_users(PyObject *self, PyObject *args) {
    rules_state *st = state_arg(args);
    return st ? PyLong_FromSize_t(st->used) : NULL;
}

static PyObject *py_sum_outside(PyObject *self, PyObject *args) {
    rules_state *st = state_arg(args);
    return st ? PyLong_FromLongLong(st->outside) : NULL;
}

static PyObject *py_rules_result(PyObject *self, PyObject *args) {
    PyObject *cap;
    Py_buffer ub, ob, sb;
    if (!PyArg_ParseTuple(args, "Ow*w*w*", &cap, &ub, &ob, &sb)) return NULL;
    rules_state *st = PyCapsule_GetPointer(cap, "video_analytics._fastlog.rules");
    PyObject *ret = NULL;
    if (!st) goto done;
    if ((size_t)ub.len < st->used * 8 || (size_t)ob.len < st->used * 8 || (size_t)sb.len < st->used * 8) {
        PyErr_SetString(PyExc_ValueError, "output buffers too small");
        goto done;
    }
    int64_t *uo = ub.buf, *oo = ob.buf, *so = sb.buf;
    Py_ssize_t k = 0;
    for (size_t h = 0; h < st->cap; h++) {
        user_state *u = &st->slots[h];
        if (u->key == EMPTY) continue;
        if (u->open) close_session(u, st->mult);
        if (!u->present) continue;
        uo[k] = (int64_t)u->key;
        oo[k] = u->total;
        so[k] = u->sessions;
        k++;
    }
    ret = PyLong_FromSsize_t(k);
done:
    PyBuffer_Release(&ub);
    PyBuffer_Release(&ob);
    PyBuffer_Release(&sb);
    return ret;
}

/* ---------------------------------------------------------------- shard split */

static PyObject *py_split(PyObject *self, PyObject *args) {
    Py_buffer ub, tb, ab, uo, to, ao, bo;
    Py_ssize_t shards;
    if (!PyArg_ParseTuple(args, "y*y*y*nw*w*w*w*", &ub, &tb, &ab, &shards, &uo, &to, &ao, &bo)) return NULL;
    Py_ssize_t n = ub.len / 8;
    PyObject *ret = NULL;
    uint32_t *sh = NULL;
    int64_t *pos = NULL;
    if (shards < 1 || tb.len != n * 8 || ab.len != n || uo.len < n * 8 || to.len < n * 8 || ao.len < n ||
        bo.len < (shards + 1) * 8) {
        PyErr_SetString(PyExc_ValueError, "bad buffer sizes");
        goto done;
    }
    sh = malloc((size_t)(n ? n : 1) * sizeof(uint32_t));
    pos = malloc((size_t)shards * 8);
    if (!sh || !pos) {
        PyErr_NoMemory();
        goto done;
    }
    const int64_t *uid = ub.buf, *lt = tb.buf;
    const int8_t *act = ab.buf;
    int64_t *u2 = uo.buf, *t2 = to.buf, *bounds = bo.buf;
    int8_t *a2 = ao.buf;
    Py_BEGIN_ALLOW_THREADS
    memset(bounds, 0, (size_t)(shards + 1) * 8);
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t k = (uint32_t)(mix((uint64_t)uid[i]) % (uint64_t)shards);
        sh[i] = k;
        bounds[k + 1]++;
    }
    for (Py_ssize_t k = 0; k < shards; k++) bounds[k + 1] += bounds[k];
    memcpy(pos, bounds, (size_t)shards * 8);
    for (Py_ssize_t i = 0; i < n; i++) { /* stable: rows keep their order within a shard */
        int64_t j = pos[sh[i]]++;
        u2[j] = uid[i];
        t2[j] = lt[i];
        a2[j] = act[i];
    }
    Py_END_ALLOW_THREADS
    ret = Py_None;
    Py_INCREF(ret);
done:
    free(sh);
    free(pos);
    PyBuffer_Release(&ub);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&ab);
    PyBuffer_Release(&uo);
    PyBuffer_Release(&to);
    PyBuffer_Release(&ao);
    PyBuffer_Release(&bo);
    return ret;
}


/* ---------------------------------------------------------------- day summaries
 * One day's per-user summary (video_analytics.day_summary), streamed in file order: times are
 * seconds into the day. sum_feed returns -1, or the index of the first event older than its
 * user's previous one (the caller then sorts the day and uses the NumPy code). */

static PyObject *py_sum_new(PyObject *self, PyObject *args) {
    long long min_gap, timeout, mult;
    Py_ssize_t users = 0;
    if (!PyArg_ParseTuple(args, "LLL|n", &min_gap, &timeout, &mult, &users)) return NULL;
    PyObject *targs = Py_BuildValue("LLLLLn", 0LL, 0LL, min_gap, timeout, mult, users);
    if (!targs) return NULL;
    PyObject *cap = py_rules_new(self, targs);
    Py_DECREF(targs);
    return cap;
}

/* sum_result(state, uid, first_t, first_act, last_t, head_add, flags, closed_total, closed_count, tail_add)
 * writes one row per user (unordered; buffers of capacity rules_users(state)); flags as day_summary. */
static PyObject *py_sum_result(PyObject *self, PyObject *args) {
    PyObject *cap;
    Py_buffer b[9];
    if (!PyArg_ParseTuple(args, "Ow*w*w*w*w*w*w*w*w*", &cap, &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6],
                          &b[7], &b[8]))
        return NULL;
    static const int width[9] = {8, 4, 1, 4, 4, 1, 8, 4, 4};
    rules_state *st = PyCapsule_GetPointer(cap, "video_analytics._fastlog.rules");
    PyObject *ret = NULL;
    if (!st) goto done;
    for (int k = 0; k < 9; k++) {
        if ((size_t)b[k].len < st->used * width[k]) {
            PyErr_SetString(PyExc_ValueError, "output buffers too small");
            goto done;
        }
    }
    int64_t *uo = b[0].buf, *ct = b[6].buf;
    int32_t *ft = b[1].buf, *lt = b[3].buf, *ha = b[4].buf, *cc = b[7].buf, *ta = b[8].buf;
    int8_t *fa = b[2].buf, *fl = b[5].buf;
    Py_ssize_t k = 0;
    for (size_t h = 0; h < st->cap; h++) {
        user_state *u = &st->slots[h];
        if (u->key == EMPTY) continue;
        int first_login = u->first_act == 0;
        uo[k] = (int64_t)u->key;
        ft[k] = (int32_t)u->first_t;
        fa[k] = u->first_act;
        lt[k] = (int32_t)u->prev_t;
        ha[k] = first_login ? 0 : (int32_t)u->head_add;
        fl[k] = (int8_t)((first_login ? 0 : (u->head_post ? 1 : 0) | (u->head_alive ? 2 : 0))
                         | (u->open ? 4 : 0) | (u->open && u->marked ? 8 : 0));
        ct[k] = u->total;
        cc[k] = (int32_t)u->sessions;
        ta[k] = u->open ? (int32_t)u->cur : 0;
        k++;
    }
    ret = PyLong_FromSsize_t(k);
done:
    for (int j = 0; j < 9; j++) PyBuffer_Release(&b[j]);
    return ret;
}

/* merge_union(a, b, out) -> k: the sorted union of two sorted arrays of distinct int64 into out
 * (capacity len(a) + len(b)). */
static PyObject *py_merge_union(PyObject *self, PyObject *args) {
    Py_buffer ab, bb, ob;
    if (!PyArg_ParseTuple(args, "y*y*w*", &ab, &bb, &ob)) return NULL;
    Py_ssize_t na = ab.len / 8, nb = bb.len / 8, i = 0, j = 0, k = 0;
    PyObject *ret = NULL;
    if (ob.len / 8 < na + nb) {
        PyErr_SetString(PyExc_ValueError, "output buffer too small");
    } else {
        const int64_t *a = ab.buf, *b = bb.buf;
        int64_t *o = ob.buf;
        while (i < na && j < nb) {
            int64_t x = a[i], y = b[j];
            o[k++] = x < y ? x : y;
            i += x <= y;
            j += y <= x;
        }
        while (i < na) o[k++] = a[i++];
        while (j < nb) o[k++] = b[j++];
        ret = PyLong_FromSsize_t(k);
    }
    PyBuffer_Release(&ab);
    PyBuffer_Release(&bb);
    PyBuffer_Release(&ob);
    return ret;
}

/* comb_feed(users, state, <the 9 summary columns>, day_start, in_window, min_gap, timeout, mult): one day's
 * summary (video_analytics.day_summary, sorted by userid) into the window's state, days in order. users
 * is the sorted union of the window's userids; state has 5 int64 per user: previous event, the open
 * session's in-window seconds, total, sessions, and bits 1 open, 2 marked, 4 present. One merge walk. */
static PyObject *py_comb_feed(PyObject *self, PyObject *args) {
    Py_buffer ub, sb, b[9];
    long long day_start, min_gap, timeout, mult;
    int inw;
    if (!PyArg_ParseTuple(args, "y*w*y*y*y*y*y*y*y*y*y*LpLLL", &ub, &sb, &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                          &b[6], &b[7], &b[8], &day_start, &inw, &min_gap, &timeout, &mult))
        return NULL;
    static const int width[9] = {8, 4, 1, 4, 4, 1, 8, 4, 4};
    PyObject *ret = NULL;
    Py_ssize_t nu = ub.len / 8, n = b[0].len / 8, j = 0, missing = 0;
    int ok = sb.len == nu * 40;
    for (int k = 0; k < 9; k++) ok &= b[k].len == n * width[k];
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "state or summary columns of the wrong length");
        goto done;
    }
    const int64_t *users = ub.buf, *uid = b[0].buf, *ct = b[6].buf;
    int64_t *state = sb.buf;
    const int32_t *ft = b[1].buf, *lt = b[3].buf, *ha = b[4].buf, *cc = b[7].buf, *ta = b[8].buf;
    const int8_t *fa = b[2].buf, *fl = b[5].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        while (j < nu && users[j] < uid[i]) j++;
        if (j == nu || users[j] != uid[i]) {
            missing = 1;
            break;
        }
        int64_t *u = state + 5 * j;  /* prev, cur, total, sessions, bits */
        int f = fl[i], cont = 0, bits = (int)u[4];
        if (bits & 1) {
            int64_t gap = day_start + ft[i] - u[0];
            cont = fa[i] != 0 && gap <= timeout;
            if (cont) {
                if (inw) u[1] += (gap >= min_gap ? gap : 0) + ha[i];
                if (f & 1) bits |= 2;
            }
            if (!cont || !(f & 2)) { /* the carried session closes */
                u[2] += (bits & 2) ? u[1] * mult : u[1];
                u[3] += u[1] > 0;
                u[1] = 0;
                bits &= ~3;
            }
        }
        if (!(cont && (f & 2))) {
            if (inw) {
                u[2] += ct[i];
                u[3] += cc[i];
            }
            u[1] = (inw && (f & 4)) ? ta[i] : 0;
            bits = (bits & ~3) | ((f & 4) ? 1 : 0) | ((f & 4) && (f & 8) ? 2 : 0);
        }
        u[0] = day_start + lt[i];
        u[4] = bits | (inw ? 4 : 0);
    }
    Py_END_ALLOW_THREADS
    if (missing) PyErr_SetString(PyExc_ValueError, "a summary's userid is not in users (or not sorted)");
    else ret = PyLong_FromSsize_t(n);
done:
    PyBuffer_Release(&ub);
    PyBuffer_Release(&sb);
    for (int k = 0; k < 9; k++) PyBuffer_Release(&b[k]);
    return ret;
}

static PyMethodDef methods[] = {
    {"split", py_split, METH_VARARGS, "Group events by shard_of(userid) (stable), with the shard bounds."},
    {"parse", py_parse, METH_VARARGS, "Parse whole log lines into event buffers (see the module source)."},
    {"rules_new", py_rules_new, METH_VARARGS, "A new streaming rule state."},
    {"rules_feed", py_rules_feed, METH_VARARGS, "Feed events in (file date, line) order."},
    {"rules_users", py_rules_users, METH_VARARGS, "Users seen so far."},
    {"rules_result", py_rules_result, METH_VARARGS, "Close open sessions and write the per-user results."},
    {"merge_union", py_merge_union, METH_VARARGS, "The sorted union of two sorted arrays of distinct int64."},
    {"comb_feed", py_comb_feed, METH_VARARGS, "One day's summary into a window's state (see the source)."},
    {"sum_new", py_sum_new, METH_VARARGS, "A new day-summary state."},
    {"sum_feed", py_sum_feed, METH_VARARGS, "Feed one day's events in file order (times outside it: counted, left out)."},
    {"sum_outside", py_sum_outside, METH_VARARGS, "Events fed whose time is outside the day."},
    {"sum_result", py_sum_result, METH_VARARGS, "Write the day's per-user summary rows."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastlog", "Online time: C parser and streaming rules.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__fastlog(void) { return PyModule_Create(&module); }
