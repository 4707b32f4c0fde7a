"""The daemon's HTTP side: the server with ``/metrics``, ``/healthz`` and ``/api/sla``
(``server``), the status page, feed and write APIs (``status``) and their OpenAPI
document (``openapi``)."""
