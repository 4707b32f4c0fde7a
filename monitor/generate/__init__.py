"""What is generated from the config for the tools beside the daemon: Prometheus rules
(``rules``) and Grafana dashboards with their preview (``dashboards``)."""
