"""Observability's front door: Lambda's metrics (`GET /metrics`, Prometheus' text format), the web console
at `/_rapidboot/` and its feed, and `rapidboot top`. The invoke path only adds to plain counters
(metrics.py); everything else is done when someone asks."""
