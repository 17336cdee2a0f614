"""Airflow API tokens for the plugin tests (simple auth manager)."""

from __future__ import annotations


def token(role: str | None = "admin", username: str = "admin") -> str:
    """A JWT for ``username`` with ``role`` (``None``: no role, so no permission)."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return create_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role))
