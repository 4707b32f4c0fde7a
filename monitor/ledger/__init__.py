"""The ledger: in-memory windows over minute rollups and their sealing (``windows``), and
the day compaction of sealed history (``compaction``)."""
