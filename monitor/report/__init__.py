"""The monthly SLA report: its model (``model``), the day-by-day reader of sealed history
(``history``), the computation (``compute``, ``year``), rendering (``render``, ``charts``,
``pdf``), the archive of signed versions (``archive``) and the daemon's report service
running in a child process (``service``)."""
