"""HTTP API (FastAPI, ``/api/v1``) and server-rendered dashboard of adsentinel.

Build the application with :func:`create_app`; ``adsentinel serve`` runs it with uvicorn.
"""

from adsentinel.api.app import create_app

__all__ = ["create_app"]
