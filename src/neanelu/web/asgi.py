"""The app as an import string for uvicorn's worker processes (each builds its own settings)."""

from __future__ import annotations

from fastapi import FastAPI

from neanelu.config import load_settings
from neanelu.db.services import resolve_services
from neanelu.web.app import create_app


def app_factory() -> FastAPI:
    settings = load_settings()
    return create_app(settings, resolve_services(settings))
