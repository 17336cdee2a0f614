"""The legacy job's documents read back for the cutover (CONTRACT §7): a ``<uid>_stat`` document as rows of
the running totals (``video_analytics.totals``), and a ``<uid>_vdaily`` ``_id`` as the day it processed.

A document that is not what the legacy job writes is refused with ``Malformed`` naming the field: an
operator (``$``) or dotted key where a field belongs, a non-finite number, a field of the wrong type, a
``HeatMapSum`` / ``PlayMapSum`` key that is not a positive segment number. Missing totals are 0.
Pure: decoded documents in, tuples out.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from operator import itemgetter

_DAY = re.compile(r"[0-9]{8}\Z")


class Malformed(ValueError):
    """A document the legacy job would not have written; the message names the field."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"field {field}: {why}")
        self.field = field


def check_keys(obj, path: str = "", skip=()) -> None:
    """Every key a plain field name (no ``$`` first, no ``.``, not empty), every float finite (the
    top-level fields in ``skip`` are checked by their own reader)."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    for k, v in items:
        if isinstance(obj, dict) and (type(k) is not str or not k or k[0] == "$" or "." in k):
            raise Malformed(f"{path}.{k}" if path else str(k), "an operator, dotted or empty key where a field belongs")
        t = type(v)
        if t is dict or t is list:
            if k not in skip:
                check_keys(v, f"{path}.{k}" if path else str(k))
        elif t is float and not math.isfinite(v):
            raise Malformed(f"{path}.{k}" if path else str(k), f"a non-finite number ({v})")


def _int(v, field: str) -> int:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, float) and not math.isfinite(v):
        raise Malformed(field, f"a non-finite number ({v})")
    if isinstance(v, bool) or not isinstance(v, int):
        raise Malformed(field, f"{_what(v)}, not an integer")
    return int(v)


def _num(v, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise Malformed(field, f"{_what(v)}, not a number")
    return float(v)


def _doc(v, field: str) -> dict:
    if not isinstance(v, dict):
        raise Malformed(field, f"{_what(v)}, not a document")
    return v


def _what(v) -> str:
    return f"{v!r}" if isinstance(v, float | int | str) and len(repr(v)) < 40 else f"a {type(v).__name__}"


def _segments(doc: dict, field: str) -> dict[int, int]:
    """A ``HeatMapSum`` / ``PlayMapSum`` as ``{segment: count}`` (checked a whole map at a time; key by key
    only to name what is wrong)."""
    m = _doc(doc.get(field, {}), field)
    keys = list(m)
    try:
        joined = "".join(keys)
    except TypeError:  # a key that is not a string
        joined = ""
    if (joined.isascii() and (joined.isdigit() or not keys) and min(map(len, keys), default=1) > 0
            and max(map(len, keys), default=0) <= 9 and "0" not in set(map(itemgetter(0), keys))
            and set(map(type, m.values())) <= {int}):
        return dict(zip(map(int, keys), m.values(), strict=True))
    out = {}
    for k, v in m.items():
        if not (type(k) is str and k.isascii() and k.isdigit() and k[0] != "0" and len(k) <= 9):
            raise Malformed(f"{field}.{k}", "not a positive segment number")
        out[int(k)] = _int(v, f"{field}.{k}")
    return out


def _geo(doc: dict, vid: bool) -> list[tuple]:
    """``(region, ClickNum, Traffic, EngageSum[, Load])`` per region, sorted by region."""
    geo = _doc(doc.get("Geo", {}), "Geo")
    out = []
    for r in sorted(geo):
        g = _doc(geo[r], f"Geo.{r}")
        row = (r, _int(g.get("ClickNum", 0), f"Geo.{r}.ClickNum"), _num(g.get("Traffic", 0.0), f"Geo.{r}.Traffic"),
               _num(g.get("EngageSum", 0.0), f"Geo.{r}.EngageSum"))
        load = _int(g.get("Load", 0), f"Geo.{r}.Load")
        if vid:
            row += (load,)
        elif load != 0:
            raise Malformed(f"Geo.{r}.Load", f"{load}: a uid's Geo Load is always 0 (CONTRACT §2)")
        out.append(row)
    return out


def _totals(doc: dict) -> tuple:
    return (_num(doc.get("Traffic", 0.0), "Traffic"), _num(doc.get("EngageSum", 0.0), "EngageSum"),
            _int(doc.get("Load", 0), "Load"), _int(doc.get("Play", 0), "Play"), _int(doc.get("IP", 0), "IP"))


def vid_rows(uid: str, vid: str, doc: dict) -> tuple[tuple, list[tuple], list[tuple]]:
    """``(vid, uid, Traffic, EngageSum, Load, Play, IP, PlayID)``, its regions
    ``(region, ClickNum, Traffic, EngageSum, Load)`` and its segments ``(seg, heat, plays)``, sorted."""
    row = (vid, uid, *_totals(doc), _int(doc.get("PlayID", 0), "PlayID"))
    heat, plays = _segments(doc, "HeatMapSum"), _segments(doc, "PlayMapSum")
    if heat.keys() != plays.keys():
        s = min(heat.keys() ^ plays.keys())
        raise Malformed(f"{'PlayMapSum' if s in heat else 'HeatMapSum'}.{s}",
                        "missing: the legacy job writes HeatMapSum and PlayMapSum for the same segments")
    return row, _geo(doc, True), [(s, heat[s], plays[s]) for s in sorted(heat)]


def uid_rows(uid: str, doc: dict) -> tuple[tuple, list[tuple], float | None]:
    """``(uid, Traffic, EngageSum, Load, Play, IP)``, its regions ``(region, ClickNum, Traffic, EngageSum)``
    and its ``Mtraffic`` (``None`` when absent)."""
    mt = doc.get("Mtraffic")
    return (uid, *_totals(doc)), _geo(doc, False), None if mt is None else _num(mt, "Mtraffic")


def stat_rows(uid: str, doc: dict):
    """``("uid", uid_rows(...))`` or ``("vid", vid_rows(...))`` for a document of ``<uid>_stat``."""
    check_keys(doc, skip=("HeatMapSum", "PlayMapSum"))
    _id = doc.get("_id")
    if _id == uid:
        return "uid", uid_rows(uid, doc)
    if isinstance(_id, str) and len(_id) == 7 and _id[:4] == uid:
        return "vid", vid_rows(uid, _id, doc)
    raise Malformed("_id", f"{_what(_id)} is neither the uid {uid!r} nor one of its vids (7 characters, "
                           f"starting with the uid)")


def vdaily_day(_id) -> str:
    """The day (``YYYYMMDD``) a ``<uid>_vdaily`` document's ``_id`` names."""
    if not isinstance(_id, str) or not _DAY.match(_id):
        raise Malformed("_id", f"{_what(_id)} is not a day YYYYMMDD")
    try:
        datetime.strptime(_id, "%Y%m%d")
    except ValueError:
        raise Malformed("_id", f"{_id!r} is not a date") from None
    return _id
