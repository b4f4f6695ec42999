"""The exporter's HTTP side: the server and its routes (server.py), --web.config.file's
TLS and basic auth (webconfig.py), the /metrics exposition (exposition.py) and the
bodies shared by concurrent scrapes (bodies.py)."""
