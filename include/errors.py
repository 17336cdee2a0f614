"""The deterministic failures the tasks turn into ``AirflowFailException`` (no retries).

Kept in a module with no imports so ``include.tasks`` can catch them without importing the
stages that raise them (``include.plays.cleanup`` pulls in pandas: ~0.5 s per task process).
Each is re-exported by the module that raises it.
"""

from __future__ import annotations


class RejectThresholdExceeded(ValueError):
    """More rejected lines than the allowed share of the rows."""


class VerificationFailed(RuntimeError):
    """At least one check failed; the message lists them."""


class CleanupRefused(RuntimeError):
    """No passing verification report vouches for the day's current ingest."""


class DocumentTooLarge(ValueError):
    """A document over MongoDB's 16 MiB; the message names its collection and ``_id``."""
