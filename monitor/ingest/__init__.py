"""Events of real traffic on their way in: parsed and checked (``events``), taken into
the collector's queue by one intake (``intake``) from the API (``monitor.web.ingest``) and
from an MQTT subscription (``mqtt``)."""
