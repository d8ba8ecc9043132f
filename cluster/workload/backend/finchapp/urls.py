"""URL map; the pattern names are the `view` label of http_requests_total."""

from django.urls import path

from finchapp import health, views

urlpatterns = [
    path("healthz/live", health.live, name="healthz_live"),
    path("healthz/ready", health.ready, name="healthz_ready"),
    path("metrics", health.metrics, name="metrics"),
    path("api/meta", views.meta, name="meta"),
    path("api/accounts/<int:pk>/summary", views.account_summary, name="account_summary"),
    path("api/transactions", views.transactions, name="transactions"),
    path("api/compute", views.compute, name="compute"),
    path("api/tasks/stats", views.task_stats, name="task_stats"),
]
