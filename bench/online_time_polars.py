"""CONTRACT §1 as one lazy Polars query over the raw log files (benchmark peer, not used by the product).

Lines are read with ``scan_csv`` (one string column, a separator that never occurs, no quoting),
parsed with one regex, sorted once, stably, by ``(userid, logtime)`` (the
concatenated files are in ``(file date, line)`` order) and the rules are expressions over
the sorted frame: ``shift`` for the gap and the previous action, cumulative sums for breaks
and sessions, then two group-bys.
"""

from __future__ import annotations

import polars as pl

LINE = (r"^[ \t\r]*([0-9]{4}-[0-9]{2}-[0-9]{2})[ \t\r]+([0-9]{2}):([0-9]{2}):([0-9]{2})[ \t\r]+"
        r"([0-9]{1,18})[ \t\r]+([A-Za-z]{3,6})[ \t\r]*$")


def query(files: list[str], win_start: int, win_stop: int, min_gap: int = 3, timeout: int = 600,
          mult: int = 3) -> pl.LazyFrame:
    """The per-user result (userid, online_seconds, sessions), sorted by userid."""
    lines = pl.scan_csv(files, has_header=False, separator="\x01", quote_char=None, new_columns=["l"],
                        schema={"l": pl.String}, encoding="utf8-lossy")
    x = pl.col("l").str.extract_groups(LINE)
    ev = (
        lines.select(
            x.struct.field("5").cast(pl.Int64, strict=False).alias("uid"),
            x.struct.field("1").str.to_date("%Y-%m-%d", strict=False).alias("d"),
            x.struct.field("2").cast(pl.Int32, strict=False).alias("hh"),
            x.struct.field("3").cast(pl.Int32, strict=False).alias("mi"),
            x.struct.field("4").cast(pl.Int32, strict=False).alias("ss"),
            x.struct.field("6").str.to_lowercase().alias("a"),
        )
        .filter(pl.col("uid").is_not_null() & pl.col("d").is_not_null() & (pl.col("hh") < 24)
                & (pl.col("mi") < 60) & (pl.col("ss") < 60) & pl.col("a").is_in(["login", "logout", "get", "post"]))
        .select(
            "uid",
            (pl.col("d").cast(pl.Int64) * 86400 + pl.col("hh") * 3600 + pl.col("mi") * 60 + pl.col("ss")).alias("t"),
            pl.col("a").replace_strict({"login": 0, "logout": 1, "get": 2, "post": 3}, return_dtype=pl.Int8),
        )
        .sort("uid", "t", maintain_order=True)  # stable: equal times keep the (file, line) order
    )
    same = pl.col("uid") == pl.col("uid").shift(1)
    gap = pl.when(same).then(pl.col("t") - pl.col("t").shift(1)).otherwise(0)
    is_login = pl.col("a") == 0
    brk = (~same.fill_null(False)) | (gap > timeout) | (pl.col("a").shift(1) == 1)
    ev = ev.with_columns(gap.alias("gap"), brk.cum_sum().alias("cbrk"), is_login.cum_sum().alias("sess"),
                         ((pl.col("t") >= win_start) & (pl.col("t") < win_stop)).alias("in_win"))
    login_cbrk = pl.when(is_login).then(pl.col("cbrk")).forward_fill()
    ev = ev.with_columns((~is_login & (login_cbrk == pl.col("cbrk")).fill_null(False)).alias("alive"))
    present = ev.filter("in_win").select(pl.col("uid").unique(maintain_order=True))
    sess = (
        ev.filter("alive")
        .group_by("sess")  # a session number is unique over all users
        .agg(pl.col("uid").first(),
             pl.col("gap").filter(pl.col("in_win") & (pl.col("gap") >= min_gap)).sum().alias("secs"),
             (pl.col("a") == 3).any().alias("marked"))
        .group_by("uid")
        .agg((pl.when("marked").then(pl.col("secs") * mult).otherwise("secs")).sum().alias("online_seconds"),
             (pl.col("secs") > 0).sum().cast(pl.Int64).alias("sessions"))
    )
    return (
        present.join(sess, on="uid", how="left")
        .select(pl.col("uid").alias("userid"),
                pl.col("online_seconds").fill_null(0).cast(pl.Int64),
                pl.col("sessions").fill_null(0).cast(pl.Int64))
        .sort("userid")
    )
