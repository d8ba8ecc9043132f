"""The reference Finch backend: Django project, Celery app (``celery -A finchapp``)."""

from finchapp.celery import app as celery_app

__all__ = ["celery_app"]
