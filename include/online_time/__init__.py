"""Users' online time (CONTRACT §1) on files: one module per task of the ``online_time`` group.

* ``sort_and_partition`` - window check, day summaries, user-aligned shards over them (else of events), rejects
* ``compute_shard``      - one shard's users: their summaries combined, or the rules over its events (mapped)
* ``summary_shards``     - the shards over day summaries: plan, compute, what verify expects
* ``merge_report``       - the window's dataset, totals, MongoDB publishing
* ``verify``             - the online-time section of the ``verify`` task
* ``logs``               - reading the log files in blocks of whole lines, parsed
* ``stream``             - the CLI's path: the whole window through the streaming rules, no shards
* ``pipeline``           - the CLI run: ``stream``, else the stages above in one process tree
* ``summaries``          - per-day summaries on the data root: each log parsed once (CONTRACT §1)
* ``windows``            - the 1-, 7- and 30-day windows side by side from the summaries (task ``windows``)

Layout under the data root, for a window ending ``<end>`` (``video_analytics.conventions``)::

    online_time/<end>/partition.json          what sort_and_partition did
    online_time/<end>/shards/shard-<i>.arrow   events of shard i in file order (Arrow IPC; full path only)
    online_time/<end>/rejects.parquet          rejected lines (file, line, reason, raw)
    online_time/<end>/results/part-<i>.parquet per-user results of shard i
    online_time/<end>/online_time.parquet      all users, sorted by userid
    online_time/<end>/totals.json              the report
    online_time/<end>/w<W>/                    window W: online_time.parquet, rejects.parquet, totals.json
                                               (skipped.json instead when its logs are not all there)
    online_time/summaries/<day>-<key>.arrow    a day's per-user summary (+ .rejects.feather), key: the
                                               file's size, mtime, sampled content hash and the rules

Every task function returns a small JSON-able dict, fit for XCom.
"""
