"""The simulated crossroads network: MQTT responders and HTTP integrated services whose
behaviour (latency, errors, outages) comes from seeded profiles, with a server-side record
of the true handling time of every request."""
