"""The stat documents built the obvious way (per-row Python over a totals state): the reference the
vectorised builders in ``video_analytics.totals`` are tested against."""

from __future__ import annotations

import pandas as pd

from video_analytics.plays import _geo, _records, dumps, ratio
from video_analytics.segments import map_runs


def vid_stat_docs(t: dict[str, pd.DataFrame]) -> dict[str, tuple[str, dict]]:
    """``{vid: (uid, doc)}``: the ``<uid>_stat`` document with ``_id`` = vid."""
    geo = _geo(t["vid_region"], ["vid"], load=True)
    heat: dict[str, dict[int, int]] = {}
    pmap: dict[str, dict[int, int]] = {}
    for vid, s, h, p in _records(t["vid_seg"], ["vid", "seg", "heat", "plays"]):
        heat.setdefault(vid, {})[int(s)] = int(h)
        pmap.setdefault(vid, {})[int(s)] = int(p)
    out = {}
    for vid, uid, tr, e, load, play, ip, pid in _records(t["vid"], ["vid", "uid", "Traffic", "EngageSum", "Load",
                                                                       "Play", "IP", "PlayID"]):
        hs, ps = heat.get(vid, {}), pmap.get(vid, {})
        doc = {"Traffic": float(tr), "EngageSum": float(e), "Load": int(load), "Play": int(play), "IP": int(ip),
               "Geo": geo.get((vid,), {})}
        if hs:  # as the legacy job: no HeatMapSum / PlayMapSum for a video without segments
            doc.update(HeatMapSum={str(k): v for k, v in hs.items()}, PlayMapSum={str(k): v for k, v in ps.items()})
        doc.update(PlayID=int(pid), Click=ratio(play, load), Engage=ratio(e, play), Htmap=dumps(map_runs(hs)),
                   Ptmap=dumps(map_runs(ps)))
        out[vid] = (uid, doc)
    return out


def uid_stat_docs(t: dict[str, pd.DataFrame], mtraffic: dict[str, float]) -> dict[str, dict]:
    """``{uid: doc}``: the ``<uid>_stat`` document with ``_id`` = uid."""
    geo = _geo(t["uid_region"], ["uid"], load=False)
    return {uid: {"Traffic": float(tr), "EngageSum": float(e), "Load": int(load), "Play": int(play),
                  "IP": int(ip), "Geo": geo.get((uid,), {}), "Mtraffic": float(mtraffic.get(uid, 0.0))}
            for uid, tr, e, load, play, ip in _records(t["uid"], ["uid", "Traffic", "EngageSum", "Load", "Play",
                                                                   "IP"])}
