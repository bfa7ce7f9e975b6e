"""The console's router: sign-in, pages and actions under /admin."""

from __future__ import annotations

from fastapi import APIRouter

from neanelu.web.console import actions, login, pages

router = APIRouter()
router.include_router(login.router)
router.include_router(pages.router)
router.include_router(actions.router)
