"""The ledger: in-memory windows over minute rollups and their sealing (``windows``), the
one reader of sealed minutes shared by the restart and the report (``history``), and the
day compaction of sealed history (``compaction``)."""
