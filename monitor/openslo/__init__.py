"""OpenSLO v1: its documented fields as typed records (``model``), the config's objectives
written as OpenSLO (``export``), and OpenSLO objectives read into config (``importer``)."""
