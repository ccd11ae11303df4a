"""adsentinel: anomaly detection and alerting for Meta (Facebook) Ads performance.

For notebooks: ``from adsentinel import detect_frame`` (a DataFrame of daily insights in, a
DataFrame of anomalies out; see :mod:`adsentinel.dataframe_api`).
"""

__version__ = "0.1.0"
__all__ = ["__version__", "detect_frame"]


def __getattr__(name: str):
    # imported on first use: `import adsentinel` (every CLI command) stays light
    if name == "detect_frame":
        from adsentinel.dataframe_api import detect_frame

        return detect_frame
    raise AttributeError(f"module 'adsentinel' has no attribute {name!r}")
