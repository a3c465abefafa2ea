"""The life of a table version, in one place.

A data refresh writes a new version of a table into a directory of its own, then makes it the
table's current one; every status a ``table_versions`` row can have is written by this package:

- ``claims``: single flight. Inserting a table's ``writing`` row claims the table (one writer at a
  time across every process); a heartbeat keeps the claim alive, and a claim whose heartbeat
  stopped is taken over (``failed``, its directory queued at once).
- ``outcomes``: how a claim ends. ``publish`` swaps the table's ``current_path`` by
  compare-and-set (``current``, the previous version ``superseded``); ``fail`` records why it did
  not (``failed``). ``uncache`` drops a table's cache (its current version ``superseded``).
- ``deletions``: a directory that stopped being current is queued (``retire``) and deleted after
  the grace period by the scheduler's deletion processor (``deleted``, or ``deletion_failed``
  after ``MAX_DELETION_RETRIES`` attempts).
- ``orphans``: the hourly sweep that ends dead claims and queues directories nothing references.

``refresh.data_refresh`` orchestrates a refresh through these steps; it writes no status itself.
"""
