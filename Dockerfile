# sla-monitor daemon. Build: docker build -t sla-monitor .
# Run:  docker run -v $PWD/config/example.yaml:/etc/sla-monitor/config.yaml:ro \
#                  -v sla-data:/var/lib/sla-monitor -p 9177:9177 sla-monitor
# The mounted config must listen on 0.0.0.0:9177 to be reachable from outside the container.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SLA_MONITOR_CONFIG=/etc/sla-monitor/config.yaml \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Chromium prints the monthly report's PDF (fonts-dejavu-core: the report's font); tini is
# PID 1, so the report workers and Chromium the daemon starts are reaped and signals reach it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-dejavu-core tini \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/sla-monitor
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY probes ./probes
COPY simulator ./simulator
COPY config ./config
# Same install as the README's (`pip install .`), without the dev extras.
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /var/lib/sla-monitor sla \
    && mkdir -p /var/lib/sla-monitor /etc/sla-monitor \
    && chown sla /var/lib/sla-monitor

USER sla
WORKDIR /var/lib/sla-monitor
VOLUME ["/var/lib/sla-monitor"]
EXPOSE 9177
# /healthz at the address and scheme the mounted config says (not a fixed port).
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s \
    CMD ["sla-monitor", "health"]
ENTRYPOINT ["tini", "--", "sla-monitor"]
CMD ["run", "--config", "/etc/sla-monitor/config.yaml"]
