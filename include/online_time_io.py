"""Online time (CONTRACT §1) on files: window check, sharding, per-shard rules, report.

Layout under the data root, for a window ending ``<end>`` (YYYY-MM-DD)::

    online_time/<end>/partition.json          what sort_and_partition did
    online_time/<end>/shards/shard-<i>.parquet events of shard i, sorted
    online_time/<end>/rejects.parquet          rejected lines (file, line, reason, raw)
    online_time/<end>/results/part-<i>.parquet per-user results of shard i
    online_time/<end>/online_time.parquet      all users, sorted by userid
    online_time/<end>/totals.json              the report

Every function returns a small JSON-able dict, fit for XCom.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from include.storage import DataRoot
from video_analytics import online_time as core

log = logging.getLogger(__name__)

BLOCK_BYTES = 1 << 20
MONGO_BATCH = 10_000
COLLECTION = "online_time"

EVENT_SCHEMA = pa.schema(
    [
        ("userid", pa.int64()),
        ("logtime", pa.int64()),
        ("action", pa.int8()),
        ("file_date", pa.int32()),
        ("line", pa.int32()),
    ]
)
SHARD_SCHEMA = pa.schema(
    [
        ("userid", pa.int64()),
        ("logtime", pa.timestamp("s")),
        ("action", pa.int8()),
        ("file_date", pa.date32()),
        ("line", pa.int32()),
    ]
)
RESULT_SCHEMA = pa.schema([("userid", pa.int64()), ("online_seconds", pa.int64()), ("sessions", pa.int64())])
REJECT_SCHEMA = pa.schema([("file", pa.string()), ("line", pa.int64()), ("reason", pa.string()), ("raw", pa.string())])


class RejectThresholdExceeded(ValueError):
    """More rejected lines than the allowed share of the rows."""


def run_dir(end: date) -> str:
    return f"online_time/{end.isoformat()}"


def window_bounds(end: date, window_days: int) -> tuple[int, int]:
    """``[start, stop)`` of the window in epoch seconds."""
    epoch = date(1970, 1, 1)
    start = (end - timedelta(days=window_days - 1) - epoch).days * 86400
    return start, (end + timedelta(days=1) - epoch).days * 86400


def _window_days(end: date, window_days: int, lookback_days: int) -> tuple[list[date], list[date]]:
    window = [end - timedelta(days=k) for k in range(window_days - 1, -1, -1)]
    lookback = [window[0] - timedelta(days=k) for k in range(lookback_days, 0, -1)]
    return lookback, window


def check_window(log_dir: str, end: date, window_days: int = 7, lookback_days: int = 1) -> list[str]:
    """Paths of the window's log files (lookback days first), in day order.

    A missing window file raises ``FileNotFoundError`` naming every missing file; a
    missing lookback file is skipped with a warning.
    """
    if window_days < 1 or lookback_days < 0:
        raise ValueError(f"window_days must be >= 1 and lookback_days >= 0 (got {window_days}, {lookback_days})")
    fs, base = fsspec.core.url_to_fs(log_dir)
    lookback, window = _window_days(end, window_days, lookback_days)

    def path(d: date) -> str:
        return posixpath.join(base, f"{d.isoformat()}.log") if base else f"{d.isoformat()}.log"

    missing = [path(d) for d in window if not fs.isfile(path(d))]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} log file(s) of the window {window[0]}..{window[-1]} missing: " + ", ".join(missing)
        )
    found = []
    for d in lookback:
        if fs.isfile(path(d)):
            found.append(path(d))
        else:
            log.warning("lookback log file %s is missing; sessions open at the window start are lost", path(d))
    proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if proto in ("file", "local") else f"{proto}://"
    return [prefix + p for p in found + [path(d) for d in window]]


def _file_day(path: str) -> date:
    return date.fromisoformat(posixpath.basename(path)[:10])


def _iter_blocks(path: str, block_bytes: int):
    """Blocks of whole lines of a file (the last one may lack its newline)."""
    rest = b""
    with fsspec.open(path, "rb") as fh:
        while True:
            chunk = fh.read(block_bytes)
            if not chunk:
                break
            buf = rest + chunk
            cut = buf.rfind(b"\n") + 1
            if cut == 0:
                rest = buf
                continue
            block, rest = buf[:cut], buf[cut:]
            yield block
    if rest:
        yield rest


def _split_file(task: tuple) -> dict:
    """Parse one log file into per-shard Arrow spill files; rejects come back in the dict."""
    path, file_index, shards, spill_dir, block_bytes = task
    fday = (_file_day(path) - date(1970, 1, 1)).days
    writers: dict[int, pa.RecordBatchStreamWriter] = {}
    rej_line, rej_reason, rej_raw = [], [], []
    rows_in = rows_parsed = 0
    try:
        before = 0  # lines of the file before the block
        for block in _iter_blocks(path, block_bytes):
            p = core.parse_block(block, before, header_allowed=before == 0)
            before += p.lines
            rows_in += p.rows_in
            rows_parsed += len(p.userid)
            rej_line.extend(p.reject_line.tolist())
            rej_reason.extend(p.reject_reason)
            rej_raw.extend(p.reject_raw)
            if not len(p.userid):
                continue
            sh = core.shard_of(p.userid, shards)
            # stable sort by shard: NumPy radix-sorts 8-bit keys, several times faster than int32
            order = np.argsort(sh.astype(np.uint8) if shards <= 256 else sh, kind="stable")
            bounds = np.concatenate(([0], np.cumsum(np.bincount(sh, minlength=shards))))
            cols = (p.userid[order], p.logtime[order], p.action[order], p.line[order])
            fd = np.full(len(order), fday, dtype=np.int32)
            for i in range(shards):
                a, b = bounds[i], bounds[i + 1]
                if a == b:
                    continue
                batch = pa.record_batch(
                    [cols[0][a:b], cols[1][a:b], cols[2][a:b], fd[a:b], cols[3][a:b]], schema=EVENT_SCHEMA
                )
                if i not in writers:
                    writers[i] = pa.ipc.new_stream(_spill_path(spill_dir, i, file_index), EVENT_SCHEMA)
                writers[i].write_batch(batch)
    finally:
        for w in writers.values():
            w.close()
    return {
        "file": path,
        "file_index": file_index,
        "rows_in": rows_in,
        "rows_parsed": rows_parsed,
        "reject_line": rej_line,
        "reject_reason": rej_reason,
        "reject_raw": rej_raw,
    }


def _spill_path(spill_dir: str, shard: int, file_index: int) -> str:
    return os.path.join(spill_dir, f"s{shard:04d}-f{file_index:04d}.arrow")


def _order_by_user_time(uid: np.ndarray, lt: np.ndarray) -> np.ndarray:
    """Stable permutation ordering rows by ``(userid, logtime)``.

    When the ``(userid, logtime, row)`` triple packs into 63 bits (it does for realistic
    ids and a window of days) one unstable sort of packed keys replaces ``np.lexsort``;
    the row number in the low bits keeps equal keys in their input order.
    """
    n = len(uid)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    umin, umax = int(uid.min()), int(uid.max())
    if n > 1 and bool(np.all(lt[1:] >= lt[:-1])):
        tmin, span = 0, 1  # already in time order: sorting by userid alone is enough
    else:
        tmin, span = int(lt.min()), int(lt.max()) - int(lt.min()) + 1
    row_bits = max(1, (n - 1).bit_length())
    if ((umax - umin + 1) * span - 1).bit_length() + row_bits > 63:
        return np.lexsort((lt, uid))
    key = uid - umin
    if span > 1:
        key *= span
        key += lt - tmin
    key <<= row_bits
    key |= np.arange(n, dtype=np.int64)
    key.sort()
    key &= (1 << row_bits) - 1
    return key


# Shards are intermediate files read once by compute_shard: plain, undictionaried Parquet
# writes about 4x faster than the default (snappy + dictionary) for a modest size increase.
FAST_SHARD_OPTIONS = {"compression": "none", "use_dictionary": False}


def _sort_shard(task: tuple) -> dict:
    """Concatenate a shard's spill files in file order, sort, write it to the data root.

    With ``rules`` (a dict, possibly empty) the shard's results are computed from the sorted
    arrays in memory and written as ``compute_shard`` would, under the key ``"result"``.
    """
    root_url, rel, shard, nfiles, spill_dir, win_start, win_stop, rules, write_options = task
    tables = []
    for f in range(nfiles):
        sp = _spill_path(spill_dir, shard, f)
        if os.path.exists(sp):
            with pa.memory_map(sp) as src:
                tables.append(pa.ipc.open_stream(src).read_all())
            os.remove(sp)
    t = pa.concat_tables(tables).combine_chunks() if tables else EVENT_SCHEMA.empty_table()
    del tables
    uid = t.column("userid").to_numpy()
    lt = t.column("logtime").to_numpy()
    # spill files are in (file date, line) order, so a stable sort on (userid, logtime) is enough
    order = _order_by_user_time(uid, lt)
    uid, lt = uid[order], lt[order]
    act = t.column("action").to_numpy()[order]
    out = pa.table(
        [
            pa.array(uid),
            pa.array(lt).cast(pa.timestamp("s")),
            pa.array(act),
            pa.array(t.column("file_date").to_numpy()[order]).cast(pa.date32()),
            pa.array(t.column("line").to_numpy()[order]),
        ],
        schema=SHARD_SCHEMA,
    )
    del t, order
    root = DataRoot(root_url)
    root.write_table(out, rel, **(write_options or {}))
    del out
    in_win = uid[(lt >= win_start) & (lt < win_stop)]  # sorted, so distinct users are value changes
    users = int(len(in_win) > 0) + int(np.count_nonzero(in_win[1:] != in_win[:-1]))
    res = {"index": shard, "path": rel, "rows": len(uid), "users_in_window": users}
    if rules is not None:
        res["result"] = _write_result(root, shard, rel.rsplit("/shards/", 1)[0], uid, lt, act,
                                      win_start, win_stop, core.Rules(**rules))
    return res


def _write_result(root: DataRoot, index: int, rd: str, uid, lt, act, win_start, win_stop, rules) -> dict:
    users, online, sessions = core.online_time(uid, lt, act, win_start, win_stop, rules)
    rel = f"{rd}/results/part-{index}.parquet"
    root.write_table(pa.table([users, online, sessions], schema=RESULT_SCHEMA), rel)
    return {
        "index": index,
        "path": rel,
        "users": len(users),
        "online_seconds": int(online.sum()),
        "sessions": int(sessions.sum()),
    }


def _map(executor, fn, tasks):
    return list(executor.map(fn, tasks)) if executor is not None else [fn(t) for t in tasks]


def sort_and_partition(
    root: DataRoot,
    log_dir: str,
    end: date,
    window_days: int = 7,
    lookback_days: int = 1,
    shards: int = 8,
    max_reject_rate: float = 0.01,
    *,
    executor=None,
    block_bytes: int = BLOCK_BYTES,
    rules: dict | None = None,
    fast_shards: bool = False,
) -> dict:
    """Parse the window's logs and write them as ``shards`` sorted Parquet shards plus rejects.

    Memory stays bounded: files are read in blocks of ``block_bytes`` and spilled per
    shard to local Arrow files, then each shard is sorted on its own. ``executor``
    (a ``concurrent.futures`` executor) runs files and shards in parallel.
    With ``rules`` (a dict of ``Rules`` fields, possibly empty) each shard's results are
    also computed right after its sort, as ``compute_shard`` would, and returned under
    ``"shard_results"`` (not in partition.json). ``fast_shards`` writes the shards as
    uncompressed Parquet (for a local, temporary data root).
    Raises ``RejectThresholdExceeded`` after writing everything when rejects exceed
    ``max_reject_rate`` of the rows.
    """
    if shards < 1:
        raise ValueError(f"shards must be >= 1 (got {shards})")
    files = check_window(log_dir, end, window_days, lookback_days)
    rd = run_dir(end)
    root.remove(rd)
    win_start, win_stop = window_bounds(end, window_days)
    spill_dir = tempfile.mkdtemp(prefix="online-time-spill-")
    try:
        split = _map(executor, _split_file, [(f, i, shards, spill_dir, block_bytes) for i, f in enumerate(files)])
        sorted_ = _map(
            executor,
            _sort_shard,
            [
                (root.url, f"{rd}/shards/shard-{i}.parquet", i, len(files), spill_dir, win_start, win_stop,
                 rules, FAST_SHARD_OPTIONS if fast_shards else None)
                for i in range(shards)
            ],
        )
    finally:
        shutil.rmtree(spill_dir, ignore_errors=True)

    rej = pa.table(
        {
            "file": pa.array([s["file"] for s in split for _ in s["reject_line"]], pa.string()),
            "line": pa.array([x for s in split for x in s["reject_line"]], pa.int64()),
            "reason": pa.array([x for s in split for x in s["reject_reason"]], pa.string()),
            "raw": pa.array([x for s in split for x in s["reject_raw"]], pa.string()),
        },
        schema=REJECT_SCHEMA,
    )
    rejects_path = f"{rd}/rejects.parquet"
    root.write_table(rej, rejects_path)
    rows_in = sum(s["rows_in"] for s in split)
    result = {
        "end": end.isoformat(),
        "run_dir": rd,
        "window_days": window_days,
        "lookback_days": lookback_days,
        "shards": [{"index": s["index"], "path": s["path"], "rows": s["rows"]} for s in sorted_],
        "rows_in": rows_in,
        "rows_parsed": sum(s["rows_parsed"] for s in split),
        "rejects": rej.num_rows,
        "rejects_path": rejects_path,
        "files": files,
        "distinct_users_in_window": sum(s["users_in_window"] for s in sorted_),
    }
    root.write_json(result, rd, "partition.json")
    if rules is not None:
        result["shard_results"] = [s["result"] for s in sorted_]
    rate = rej.num_rows / rows_in if rows_in else 0.0
    if rate > max_reject_rate:
        raise RejectThresholdExceeded(
            f"{rej.num_rows} rejected line(s) of {rows_in} ({rate:.4%}) exceed the threshold "
            f"{max_reject_rate:.4%}; see {root.uri(rejects_path)}"
        )
    return result


def compute_shard(
    root: DataRoot, shard: dict, end: date, window_days: int = 7, rules: dict | None = None
) -> dict:
    """Apply the rules to one sorted shard; write ``results/part-<i>.parquet``."""
    r = core.Rules(**(rules or {}))
    t = root.read_table(shard["path"], columns=["userid", "logtime", "action"])
    win_start, win_stop = window_bounds(end, window_days)
    uid = t.column("userid").to_numpy()
    lt = t.column("logtime").cast(pa.timestamp("s")).cast(pa.int64()).to_numpy()
    act = t.column("action").to_numpy()
    del t
    return _write_result(root, shard["index"], run_dir(end), uid, lt, act, win_start, win_stop, r)


def _publish(mongo_db, table: pa.Table, end: date, window_days: int) -> int:
    from pymongo import UpdateOne
    from pymongo.write_concern import WriteConcern

    coll = mongo_db.get_collection(COLLECTION, write_concern=WriteConcern(w=1))
    end_s = end.isoformat()
    run = uuid.uuid4().hex
    uid = table.column("userid").to_pylist()
    sec = table.column("online_seconds").to_pylist()
    ses = table.column("sessions").to_pylist()
    n = 0
    for a in range(0, len(uid), MONGO_BATCH):
        ops = [
            UpdateOne(
                {"_id": f"{u}_{end:%Y%m%d}"},
                {"$set": {"userid": u, "window_end": end_s, "window_days": window_days,
                          "online_seconds": s, "sessions": c, "run": run}},
                upsert=True,
            )
            for u, s, c in zip(uid[a:a + MONGO_BATCH], sec[a:a + MONGO_BATCH], ses[a:a + MONGO_BATCH], strict=True)
        ]
        res = coll.bulk_write(ops, ordered=False)
        n += res.upserted_count + res.matched_count
    # users of an earlier run of this window that are gone now
    coll.delete_many({"window_end": end_s, "window_days": window_days, "run": {"$ne": run}})
    return n


def read_partition(root: DataRoot, end: date) -> dict:
    """The partition manifest ``sort_and_partition`` wrote for the window ending ``end``."""
    return root.read_json(run_dir(end), "partition.json")


def merge_report(root: DataRoot, end: date, partition: dict, shard_results: list[dict], mongo_db=None) -> dict:
    """Concatenate shard results into ``online_time.parquet``, publish, write ``totals.json``."""
    rd = run_dir(end)
    parts = [root.read_table(r["path"]) for r in shard_results if root.exists(r["path"])]
    table = pa.concat_tables(parts) if parts else RESULT_SCHEMA.empty_table()
    table = table.take(pa.array(np.argsort(table.column("userid").to_numpy(), kind="stable")))
    result_path = f"{rd}/online_time.parquet"
    root.write_table(table, result_path)
    window_days = int(partition.get("window_days", 7))
    published = _publish(mongo_db, table, end, window_days) if mongo_db is not None else None
    totals = {
        "end": end.isoformat(),
        "users": table.num_rows,
        "online_seconds": int(pc.sum(table.column("online_seconds")).as_py() or 0),
        "sessions": int(pc.sum(table.column("sessions")).as_py() or 0),
        "rows_in": partition["rows_in"],
        "rows_parsed": partition["rows_parsed"],
        "rejects": partition["rejects"],
        "shards": len(partition["shards"]),
        "shards_with_results": len(parts),
        "distinct_users_in_window": partition["distinct_users_in_window"],
        "result_path": result_path,
        "published": published,
    }
    root.write_json(totals, rd, "totals.json")
    return totals


def verify_online_time(root: DataRoot, end: date, max_reject_rate: float = 0.01) -> list[dict]:
    """Checks recomputed from what is on the data root: ``[{"name", "ok", "detail"}]``."""
    rd = run_dir(end)
    checks: list[dict] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"name": name, "ok": bool(ok), "detail": detail})

    if not root.exists(rd, "partition.json"):
        check("partition", False, f"{root.uri(rd, 'partition.json')} is missing")
        return checks
    part = root.read_json(rd, "partition.json")
    win_start, win_stop = window_bounds(end, int(part.get("window_days", 7)))

    missing_shards = [s["path"] for s in part["shards"] if not root.exists(s["path"])]
    missing_parts = [
        f"{rd}/results/part-{s['index']}.parquet"
        for s in part["shards"]
        if not root.exists(f"{rd}/results/part-{s['index']}.parquet")
    ]
    check("every shard has a result", not missing_shards and not missing_parts,
          f"{len(part['shards'])} shards; missing shards: {missing_shards or 'none'}; "
          f"missing results: {missing_parts or 'none'}")

    parsed = users_expected = 0
    for s in part["shards"]:
        if s["path"] in missing_shards:
            continue
        t = root.read_table(s["path"], columns=["userid", "logtime"])
        parsed += t.num_rows
        lt = t.column("logtime").cast(pa.timestamp("s")).cast(pa.int64()).to_numpy()
        uid = t.column("userid").to_numpy()
        users_expected += len(np.unique(uid[(lt >= win_start) & (lt < win_stop)]))
    rejects = pq.ParquetFile(root.fs.open(root.path(part["rejects_path"]), "rb")).metadata.num_rows \
        if root.exists(part["rejects_path"]) else 0
    check("rows_in == rows_parsed + rejects", part["rows_in"] == parsed + rejects and not missing_shards,
          f"rows_in {part['rows_in']}, parsed rows in shards {parsed}, rejects {rejects}")

    parts_users = sum(
        pq.ParquetFile(root.fs.open(root.path(f"{rd}/results/part-{s['index']}.parquet"), "rb")).metadata.num_rows
        for s in part["shards"]
        if f"{rd}/results/part-{s['index']}.parquet" not in missing_parts
    )
    if root.exists(rd, "online_time.parquet"):
        out = root.read_table(rd, "online_time.parquet", columns=["userid"]).column("userid").to_numpy()
        ok = len(out) == users_expected == parts_users and len(np.unique(out)) == len(out)
        detail = (f"{len(out)} users in the report, {parts_users} in the shard results, "
                  f"{users_expected} distinct users with a valid in-window event in the shards")
    else:
        ok, detail = False, f"{root.uri(rd, 'online_time.parquet')} is missing"
    check("users out == users with an in-window event", ok, detail)

    rate = rejects / part["rows_in"] if part["rows_in"] else 0.0
    check("reject rate under threshold", rate <= max_reject_rate,
          f"{rejects} rejects of {part['rows_in']} rows = {rate:.4%} (threshold {max_reject_rate:.4%})")
    return checks


def _fail(msg: str, code: int = 2) -> int:
    print(f"video-analytics online-time: error: {msg}", file=sys.stderr)
    return code


def run_cli(args) -> int:
    """``video-analytics online-time``: the whole computation into a .csv or .parquet file."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    t0 = time.perf_counter()
    try:
        end = date.fromisoformat(args.end)
    except ValueError:
        return _fail(f"--end must be a date YYYY-MM-DD (got {args.end!r})")
    out = str(args.out)
    if not out.endswith((".csv", ".parquet")):
        return _fail(f"--out must end with .csv or .parquet (got {out!r})")
    if args.window < 1 or args.lookback < 0 or args.shards < 1:
        return _fail("--window and --shards must be >= 1, --lookback >= 0")
    if not os.path.isdir(args.log_dir):
        return _fail(f"--log-dir {args.log_dir!r} is not a directory")
    tmp = None
    if args.work_dir:
        work = args.work_dir
    else:
        tmp = tempfile.TemporaryDirectory(prefix="online-time-")
        work = tmp.name
    root = DataRoot(os.path.abspath(work))
    workers = max(1, min(2, os.cpu_count() or 1))
    executor = ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers > 1 else None
    if executor is not None:
        for _ in range(workers):
            executor.submit(_warm_up)  # workers import NumPy and Arrow while the window is checked
    try:
        # the rules run in the same task as each shard's sort, on the arrays in memory
        part = sort_and_partition(root, args.log_dir, end, args.window, args.lookback, args.shards,
                                  args.max_reject_rate, executor=executor, rules={}, fast_shards=True)
        results = part.pop("shard_results")
        totals = merge_report(root, end, part, results)
        table = root.read_table(totals["result_path"])
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        if out.endswith(".csv"):
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, out, pacsv.WriteOptions(quoting_style="none", quoting_header="none"))
        else:
            pq.write_table(table, out)
    except FileNotFoundError as exc:
        return _fail(str(exc))
    except RejectThresholdExceeded as exc:
        return _fail(str(exc), 3)
    except (ValueError, OSError) as exc:
        return _fail(f"{type(exc).__name__}: {exc}", 1)
    finally:
        if executor is not None:
            executor.shutdown()
        if tmp is not None:
            tmp.cleanup()
    rate = part["rejects"] / part["rows_in"] if part["rows_in"] else 0.0
    print(
        f"online-time {end}: {totals['users']} users, {totals['online_seconds']} s, {totals['sessions']} sessions; "
        f"{part['rows_in']} rows, {part['rejects']} rejected ({rate:.3%}); {len(part['shards'])} shards; "
        f"{time.perf_counter() - t0:.2f}s -> {out}",
        file=sys.stderr,
    )
    return 0


def _warm_up() -> None:
    return None
