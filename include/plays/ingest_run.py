"""The state of one ``ingest_plays`` run, passed from stage to stage (``include.plays.ingest_*``)."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from include.plays.decoders import Counter
from include.storage import DataRoot
from video_analytics.conventions import plays_path


@dataclass
class IngestRun:
    """Settings, counters and the results each stage hands to the next."""

    root: DataRoot
    redis: Any
    raw: Any            # a client on the same database returning bytes
    mysql_hook: Any
    day: str
    mongo_db: Any
    batch: int
    chunk: int
    lrange_step: int
    workers: int
    spill: str          # local scratch folder
    pool: Any = None    # the decoder processes, launched at the start (``ingest_decode.start_decoders``)
    rt: Counter = field(default_factory=Counter)
    t0: float = field(default_factory=time.perf_counter)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # key files (step 1)
    n_read: int = 0
    n_uniq: int = 0
    n_prev: int = 0
    n_new: int = 0
    old_id: np.ndarray | None = None
    # pass 1
    t_fetch: float = 0.0
    rt_workers: int = 0
    dec_rss: float = 0.0
    decoder_processes: int = 0
    raw_slots: int = 1  # the chunks' raw-values slot files (``slots.raw_slot``)
    spills: list[str] = field(default_factory=list)
    mixed: set[str] = field(default_factory=set)
    vids_seen: dict[str, None] = field(default_factory=dict)
    new_count: dict[str, int] = field(default_factory=dict)  # vid -> new plays so far (ranks go on across chunks)
    distinct_j: int = 0
    n_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    segment_parts: list[str] = field(default_factory=list)
    tables_from_snapshot: dict[str, dict] = field(default_factory=dict)
    # categories and play ids
    kids: dict[str, str] = field(default_factory=dict)
    bad_kid: set[str] = field(default_factory=set)
    kstats: dict = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    before: dict[str, int] = field(default_factory=dict)
    astats: dict = field(default_factory=dict)
    # pass 2
    ingested: int = 0
    new_ids: int = 0
    times: dict[str, float] = field(default_factory=dict)

    def rel(self, *parts: str) -> str:
        """A path under the day's ``plays/<D>/``."""
        return plays_path(self.day, *parts)

    @property
    def snap_rel(self) -> str:
        return self.rel("snapshot", "plays_raw.parquet")

    @property
    def new_keys(self) -> str:
        """The local Arrow file of the keys to fetch from Redis."""
        return os.path.join(self.spill, "new.keys")

    def add_reasons(self, reasons: dict[str, int]) -> None:
        for r, c in reasons.items():
            self.reasons[r] = self.reasons.get(r, 0) + c
