"""A Python 3 port of the legacy per-play / per-vid workers (seeds/000), used as the test oracle.

It runs the legacy algorithm play by play against a real Redis (its own database) and a
mongomock database, with the contract's departures (CONTRACT §6) applied:
missing load/play entries are 0 and zero denominators give 0.0; ``mergerPlaySeg([])`` is ``[]``;
a duplicated key is handled once; writes are acknowledged; ``Mtraffic`` is reset to 0.0 at the
start of each month (the legacy job's outside monthly reset); a malformed play is skipped
(quarantined) instead of killing the worker. Deliberately independent of ``video_analytics``.
"""

from __future__ import annotations

import math

import ujson

FIELDS = ("starttime", "country", "region", "city", "ip", "os", "browser", "flow", "comprate")
SQL = "select b.kid from vinfo as a left join vsort as b on a.vsortid = b.id where a.vid = %s"


def merger_play_seg(runs):
    """The legacy ``mergerPlaySeg`` as CONTRACT §3 describes it (``[]`` for ``[]``)."""
    out = []
    for start, end, value in runs:
        if out and out[-1][1] == start and out[-1][2] == value:
            out[-1][1] = end
        else:
            out.append([start, end, value])
    return out


def _div(a, b):
    return a / b if b else 0.0


def _name_ok(s):
    return bool(s) and "." not in s and "$" not in s


class LegacyJob:
    """``run_day(date)`` = handleTENDLIST over ``T_endlist_<date>`` then handleTVIDSET over ``T_VIDS_<date>``."""

    def __init__(self, redata, mongo_db, mysql_conn, lrem: bool = True):
        self.r = redata
        self.db = mongo_db
        self.mysql = mysql_conn
        self.lrem = lrem
        self.month = None
        self.quarantined: list[tuple[str, str]] = []
        self.mysql_queries = 0

    # -- outside monthly reset of Mtraffic -----------------------------------------------------
    def _monthly_reset(self, date):
        if self.month is not None and date[:6] != self.month:
            for name in self.db.list_collection_names():
                if name.endswith("_stat"):
                    uid = name[:-5]
                    self.db[name].update_one({"_id": uid, "Mtraffic": {"$exists": True}},
                                             {"$set": {"Mtraffic": 0.0}})
        self.month = date[:6] if self.month is None or date[:6] > self.month else self.month

    def run_day(self, date):
        self._monthly_reset(date)
        seen = set()
        for key in self.r.lrange(f"T_endlist_{date}", 0, -1):
            if key in seen:
                continue
            seen.add(key)
            self.handle_play(key, date)
        for vid in sorted(self.r.smembers(f"T_VIDS_{date}")):
            self.handle_vid(vid, date)

    # -- handleTENDLIST ------------------------------------------------------------------------
    def _kid(self, vid):
        kid = self.r.hget("T_video_kid_info", vid)
        if kid is None:
            cur = self.mysql.cursor()
            n = cur.execute(SQL, (vid,))
            self.mysql_queries += 1
            rows = cur.fetchall()
            cur.close()
            if n >= 1:
                kid = rows[0][0]
                kid = "nokid" if kid is None else str(kid)
            else:
                kid = "nokid"
            self.r.hset("T_video_kid_info", vid, kid)
        return kid

    def _validate(self, key, vid, S, J):
        if not _name_ok(vid):
            return "bad_vid"
        if S is None:
            return "missing_S"
        if J is None:
            return "missing_J"
        try:
            s = ujson.decode(S)
        except ValueError:
            return "invalid_json_S"
        if not isinstance(s, dict):
            return "invalid_json_S"
        try:
            inter = ujson.decode(J)
        except ValueError:
            return "invalid_json_J"
        if not isinstance(inter, list) or not all(
                isinstance(i, list) and len(i) == 2 and all(type(x) is int for x in i) for i in inter):
            return "bad_segments"
        for f in FIELDS:
            if s.get(f) is None:
                return "missing_field:" + f
        for f in ("flow", "comprate"):
            try:
                if not math.isfinite(float(s[f])):
                    return "non_numeric:" + f
            except (TypeError, ValueError):
                return "non_numeric:" + f
        if not _name_ok(str(s["region"])):
            return "bad_region"
        return None

    def handle_play(self, KeyName, date):
        vid = KeyName[0:7]
        uid = vid[0:4]
        redpipe = self.r.pipeline()
        redpipe.get(KeyName + "_S")
        redpipe.get(KeyName + "_J")
        redpipe.get(KeyName + "_z1")
        PlayDataList = redpipe.execute()
        why = self._validate(KeyName, vid, PlayDataList[0], PlayDataList[1])
        if why is None:
            kid = self._kid(vid)
            if not _name_ok(kid):
                why = "bad_kid"
        if why is not None:
            self.quarantined.append((KeyName, why))
            if self.lrem:
                self.r.lrem(f"T_endlist_{date}", 0, KeyName)
            return
        S = ujson.decode(PlayDataList[0])
        starttime = S["starttime"]
        country = S["country"]
        region = str(S["region"])
        city = S["city"]
        ip = S["ip"]
        os_ = S["os"]
        browser = S["browser"]
        flow = float(S["flow"])
        comprate = float(S["comprate"])
        interdata = ujson.decode(PlayDataList[1])
        playdata = merger_play_seg([[int(i[0]) * 2 - 2, int(i[0]) * 2, int(i[1])] for i in interdata])

        redpipe = self.r.pipeline()
        redpipe.sadd(f"T_IPS_{vid}_{date}", ip if isinstance(ip, str) else str(ip))
        redpipe.sadd(f"T_VIDS_{date}", vid)
        redpipe.sadd(f"T_region_{vid}_{date}", region)
        redpipe.sadd(f"T_region_{uid}_{date}", region)
        redpipe.execute()

        uid_stat_t = self.db[f"{uid}_stat"]
        vid_play_t = self.db[f"{vid}_play"]
        uid_vdaily_t = self.db[f"{uid}_vdaily"]
        uid_daily_t = self.db[f"{uid}_daily"]
        uid_type_t = self.db[f"{uid}_type"]

        redpipe = self.r.pipeline()
        redpipe.hincrbyfloat(f"T_engagesum_{uid}_{date}", vid, comprate)
        redpipe.hincrbyfloat(f"T_engagesum_{uid}_{date}", uid, comprate)
        if kid != "nokid":
            redpipe.hincrbyfloat(f"T_engagesum_{uid}_{date}", kid, comprate)
        redpipe.execute()

        if not self.r.hexists("vid_playid", vid):
            tmpval = uid_stat_t.find_one({"_id": vid}, {"_id": 0, "PlayID": 1})
            if tmpval is None or len(tmpval) == 0:
                playid = self.r.hincrby("vid_playid", vid, 1)
            else:
                playid = int(tmpval["PlayID"]) + 1
                self.r.hset("vid_playid", vid, playid)
        else:
            playid = self.r.hincrby("vid_playid", vid, 1)

        vid_play_t.update_one({"_id": int(playid)}, {"$set": {
            "Date": date, "PlayTime": starttime, "PIP": ip, "Engage": comprate, "Country": country,
            "Provinces": region, "PGeo": city, "Htmap": ujson.encode(playdata), "OS": os_, "Browser": browser,
        }}, upsert=True)
        if PlayDataList[2] is not None:
            vid_play_t.update_one({"_id": int(playid)}, {"$set": {"zz_uinfo": ujson.encode(PlayDataList[2])}},
                                  upsert=True)

        uid_vdaily_t.update_one({"_id": date}, {"$inc": {
            f"{vid}.Traffic": flow, f"{vid}.Geo.{region}.ClickNum": 1, f"{vid}.Geo.{region}.Load": 0,
            f"{vid}.Geo.{region}.Traffic": flow, f"{vid}.Geo.{region}.EngageSum": comprate,
            f"{vid}.EngageSum": comprate}}, upsert=True)
        uid_stat_t.update_one({"_id": vid}, {"$inc": {
            "Traffic": flow, f"Geo.{region}.ClickNum": 1, f"Geo.{region}.Load": 0, f"Geo.{region}.Traffic": flow,
            f"Geo.{region}.EngageSum": comprate, "EngageSum": comprate}}, upsert=True)
        for interseg in interdata:
            uid_stat_t.update_one({"_id": vid}, {"$inc": {f"HeatMapSum.{interseg[0]}": interseg[1],
                                                          f"PlayMapSum.{interseg[0]}": 1}}, upsert=True)
        uid_daily_t.update_one({"_id": date}, {"$inc": {
            "Traffic": flow, f"Geo.{region}.ClickNum": 1, f"Geo.{region}.Load": 0, f"Geo.{region}.Traffic": flow,
            f"Geo.{region}.EngageSum": comprate, "EngageSum": comprate}}, upsert=True)
        uid_stat_t.update_one({"_id": uid}, {"$inc": {
            "Traffic": flow, f"Geo.{region}.Load": 0, f"Geo.{region}.ClickNum": 1, f"Geo.{region}.Traffic": flow,
            f"Geo.{region}.EngageSum": comprate, "Mtraffic": flow, "EngageSum": comprate}}, upsert=True)
        if kid != "nokid":
            uid_type_t.update_one({"_id": date}, {"$inc": {
                f"{kid}.Traffic": flow, f"{kid}.Geo.{region}.ClickNum": 1, f"{kid}.Geo.{region}.Load": 0,
                f"{kid}.Geo.{region}.Traffic": flow, f"{kid}.Geo.{region}.EngageSum": comprate,
                f"{kid}.EngageSum": comprate}}, upsert=True)
        if self.lrem:
            self.r.lrem(f"T_endlist_{date}", 0, KeyName)

    # -- handleTVIDSET -------------------------------------------------------------------------
    def handle_vid(self, vid, date):
        uid = vid[0:4]
        kid = self.r.hget("T_video_kid_info", vid)
        redpipe = self.r.pipeline()
        redpipe.scard(f"T_IPS_{vid}_{date}")
        redpipe.hget(f"T_loadtable_{date}", vid)
        redpipe.hget(f"T_playtable_{date}", vid)
        redpipe.sadd(f"T_UIDS_{date}", uid)
        vidDataList = redpipe.execute()
        indepipnums = int(vidDataList[0])
        dailyload = int(vidDataList[1] or 0)
        dailyplay = int(vidDataList[2] or 0)

        uid_stat_t = self.db[f"{uid}_stat"]
        uid_vdaily_t = self.db[f"{uid}_vdaily"]
        uid_daily_t = self.db[f"{uid}_daily"]
        uid_type_t = self.db[f"{uid}_type"]

        playid = self.r.hget("vid_playid", vid)
        uid_stat_t.update_one({"_id": vid}, {"$set": {"PlayID": int(playid)}}, upsert=True)
        engagesum = float(self.r.hget(f"T_engagesum_{uid}_{date}", vid) or 0)
        uid_vdaily_t.update_one({"_id": date}, {"$set": {
            f"{vid}.Load": dailyload, f"{vid}.Play": dailyplay, f"{vid}.Click": _div(dailyplay, dailyload),
            f"{vid}.IP": indepipnums, f"{vid}.Engage": _div(engagesum, dailyplay)}}, upsert=True)
        uid_stat_t.update_one({"_id": vid}, {"$inc": {"Load": dailyload, "Play": dailyplay, "IP": indepipnums}},
                              upsert=True)
        region_list = list(self.r.smembers(f"T_region_{vid}_{date}"))
        for i in region_list:
            LoadSum = int(self.r.hget(f"T_regiontable_{date}", f"{vid}{i}") or 0)
            uid_stat_t.update_one({"_id": vid}, {"$inc": {f"Geo.{i}.Load": LoadSum}}, upsert=True)
            uid_vdaily_t.update_one({"_id": date}, {"$inc": {f"{vid}.Geo.{i}.Load": LoadSum}}, upsert=True)
        res = uid_stat_t.find_one({"_id": vid}, {"_id": 0, "Load": 1, "Play": 1, "EngageSum": 1})
        vidtotalload = int(res["Load"])
        vidtotalplay = int(res["Play"])
        videngagesum = float(res["EngageSum"])
        heat = uid_stat_t.find_one({"_id": vid}, {"_id": 0, "HeatMapSum": 1}).get("HeatMapSum", {})
        totalinterdata = sorted([int(k) * 2 - 2, int(k) * 2, int(v)] for k, v in heat.items())
        totalinterdata = merger_play_seg(totalinterdata)
        pmap = uid_stat_t.find_one({"_id": vid}, {"_id": 0, "PlayMapSum": 1}).get("PlayMapSum", {})
        totalplayhotdata = sorted([int(k) * 2 - 2, int(k) * 2, int(v)] for k, v in pmap.items())
        totalplayhotdata = merger_play_seg(totalplayhotdata)
        uid_stat_t.update_one({"_id": vid}, {"$set": {
            "Click": _div(vidtotalplay, vidtotalload), "Engage": _div(videngagesum, vidtotalplay),
            "Htmap": ujson.encode(totalinterdata), "Ptmap": ujson.encode(totalplayhotdata)}}, upsert=True)
        uid_daily_t.update_one({"_id": date}, {"$inc": {"Load": dailyload, "Play": dailyplay, "IP": indepipnums}},
                               upsert=True)
        uid_stat_t.update_one({"_id": uid}, {"$inc": {"Load": dailyload, "Play": dailyplay, "IP": indepipnums}},
                              upsert=True)
        if kid != "nokid":
            uid_type_t.update_one({"_id": date}, {"$inc": {
                f"{kid}.Load": dailyload, f"{kid}.Play": dailyplay, f"{kid}.IP": indepipnums}}, upsert=True)
            for i in region_list:
                LoadSum = int(self.r.hget(f"T_regiontable_{date}", f"{vid}{i}") or 0)
                uid_type_t.update_one({"_id": date}, {"$inc": {f"{kid}.Geo.{i}.Load": LoadSum}}, upsert=True)
        self.r.srem(f"T_VIDS_{date}", vid)


def dump_db(mongo_db) -> dict:
    """``{collection: {_id: doc without _id}}`` of a (mongomock) database (without the publish marker)."""
    from include.mongo import PUBLISH_MARKER

    out = {}
    for name in mongo_db.list_collection_names():
        if name == PUBLISH_MARKER:
            continue
        out[name] = {d["_id"]: {k: v for k, v in d.items() if k != "_id"} for d in mongo_db[name].find()}
    return out
