"""Play statistics I/O (CONTRACT §2, §4, §5): one module per task of the ``plays`` group.

* ``ingest_plays``  - Redis snapshot, validation and quarantine; one ``ingest_run.IngestRun`` goes through
                      ``ingest_keys`` (T_endlist_D into deduplicated key files), ``ingest_decode`` (pass 1:
                      raw snapshot, decoding), ``ingest_ids`` (``categories``: kid cache and MySQL;
                      ``play_ids``: reservation in ``vid_playid``) and ``ingest_write`` (pass 2)
* ``rollup_videos`` - the day's contributions and documents, folded into the running totals (``totals``)
* ``totals``        - the running totals: registry, kept snapshots, the fold of a day
* ``documents``     - every document a day publishes (one builder for publish, verify and export)
* ``publish``       - bulk upserts into MongoDB of the documents changed since their last publish
* ``cleanup``       - archived plays out of ``T_endlist_D``, play-id counters mirrored
* ``verify``        - the plays section of the ``verify`` task
* ``store``         - Parquet / JSON-lines helpers for ``plays/<D>/``
* ``baseline``      - the legacy job's totals, the fold's initial state (CONTRACT §7); imported by
                      ``legacy_import`` (the ``legacy-import`` command) through ``legacy_dump``

Data-root layout, per day ``D`` (``video_analytics.conventions.plays_path``)::

    plays/D/snapshot/endlist.parquet   key                 T_endlist_D as last read (duplicates included)
    plays/D/snapshot/plays_raw.parquet key, S, J, z1       unique keys, raw values; union over re-runs
    plays/D/snapshot/tables.parquet    table, field, value T_loadtable_D / T_playtable_D / T_regiontable_D
    plays/D/kids.parquet               vid, kid, source    the category each vid was given
    plays/D/allocation.parquet         key, vid, playid    play ids given out (reused on re-runs)
    plays/D/quarantine.parquet         key, reason, S, J, z1
    plays/D/plays.parquet              one row per ingested play (vid, uid, kid, playid, region, flow, ...);
                                       also the day's <vid>_play documents (``documents.play_frame``)
    plays/D/segments.parquet           vid, seg, heat, plays   (the day's HeatMapSum / PlayMapSum)
    plays/D/ingest.json                ingest report
    plays/D/contrib/<kind>.parquet     the day's contributions: vid, vid_region, vid_seg, uid, uid_region,
                                       kid, kid_region
    plays/D/docs/{vdaily,daily,type}.jsonl   {"coll", "_id", "doc"} per line
    plays/D/docs/stat_keys.json        the vids / uids whose stat documents the day refreshes
    plays/D/published/<target>.parquet coll, id, hash of the day's documents last published there
    plays/D/rollup.json, plays/D/cleanup.json

and, for all days, ``totals/`` (``include.plays.totals``).
"""
