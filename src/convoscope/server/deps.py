"""Access to the process's services from a request."""

from __future__ import annotations

from typing import cast

from fastapi import Request

from .services import Services

__all__ = ["get_services"]


def get_services(request: Request) -> Services:
    """The services the app was created with."""
    return cast(Services, request.app.state.services)
