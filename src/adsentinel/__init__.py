"""adsentinel: anomaly detection and alerting for Meta (Facebook) Ads performance."""

__version__ = "0.1.0"
