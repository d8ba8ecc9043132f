"""Django app config: the project package is also the one app (models, commands, tasks)."""

from django.apps import AppConfig


class FinchAppConfig(AppConfig):
    name = "finchapp"
    label = "finch"
    verbose_name = "Finch reference workload"
