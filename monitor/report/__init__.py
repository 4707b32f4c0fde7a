"""The monthly SLA report: its model and computation (``model``), rendering (``render``,
``charts``, ``pdf``), the archive of signed versions (``archive``) and the daemon's report
service running in a child process (``service``)."""
