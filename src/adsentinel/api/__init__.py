"""HTTP API (FastAPI, ``/api/v1``) and server-rendered dashboard of adsentinel.

Build the application with :func:`create_app`; ``adsentinel serve`` runs it with uvicorn.
:func:`create_app` is imported on first use, not with the package: the chart process
(:mod:`adsentinel.api.chart_process`) imports :mod:`adsentinel.api.series` alone, without the
application around it (half its memory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adsentinel.api.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from adsentinel.api.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["create_app"]
