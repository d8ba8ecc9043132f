"""`kubectl create job --from=cronjob/<name>`, then wait for the Job to finish.

The Job is made the way kubectl makes it (staging/src/k8s.io/kubectl/pkg/cmd/create/
create_job.go, createJobFromCronJob): the template's labels and annotations, the annotation
`cronjob.kubernetes.io/instantiate: manual`, an owner reference to the CronJob, and the
template's spec unchanged; the real Job controller then runs it (backoffLimit,
activeDeadlineSeconds, restartPolicy)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from kubernetes.client import V1Job, V1ObjectMeta, V1OwnerReference
from kubernetes.client.exceptions import ApiException

from finchsim.errors import PlatformError
from finchsim.platform.base import JobResult
from finchsim.platform.kubernetes.client import Clients, api_message

DEFAULT_TIMEOUT = 3600.0


def create_job_from_cronjob(clients: Clients, namespace: str, cronjob: str) -> V1Job:
    try:
        cj = clients.batch.read_namespaced_cron_job(cronjob, namespace)
    except ApiException as exc:
        if exc.status == 404:
            names = [
                c.metadata.name for c in clients.batch.list_namespaced_cron_job(namespace).items
            ]
            raise PlatformError(
                f"no CronJob {namespace}/{cronjob}; have: {', '.join(sorted(names)) or 'none'}"
            ) from exc
        raise PlatformError(f"reading CronJob {namespace}/{cronjob}: {api_message(exc)}") from exc
    template = cj.spec.job_template
    annotations = dict((template.metadata.annotations if template.metadata else None) or {})
    annotations["cronjob.kubernetes.io/instantiate"] = "manual"
    job = V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=V1ObjectMeta(
            name=f"{cronjob}-manual-{secrets.token_hex(3)}",
            namespace=namespace,
            labels=dict((template.metadata.labels if template.metadata else None) or {}),
            annotations=annotations,
            owner_references=[
                V1OwnerReference(
                    api_version="batch/v1",
                    kind="CronJob",
                    name=cj.metadata.name,
                    uid=cj.metadata.uid,
                    controller=True,
                )
            ],
        ),
        spec=template.spec,
    )
    try:
        created: V1Job = clients.batch.create_namespaced_job(namespace, job)
    except ApiException as exc:
        raise PlatformError(f"creating a Job from {cronjob}: {api_message(exc)}") from exc
    return created


def _finished(job: V1Job) -> tuple[bool, str] | None:
    for cond in job.status.conditions or []:
        if cond.status == "True" and cond.type in ("Complete", "Failed"):
            return (cond.type == "Complete", cond.reason or cond.type)
    return None


def _output(clients: Clients, namespace: str, job: str) -> str:
    """The log of the Job's last pod, where the cluster's kubelets serve logs."""
    pods = clients.core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
    if not pods:
        return ""
    last = max(pods, key=lambda p: p.metadata.creation_timestamp)
    try:
        return str(clients.core.read_namespaced_pod_log(last.metadata.name, namespace))
    except ApiException:
        return ""  # KWOK's pods have no logs


def run_job(
    clients: Clients,
    namespace: str,
    cronjob: str,
    timeout: float | None,
    poll: Callable[[], None] = lambda: None,
) -> JobResult:
    job = create_job_from_cronjob(clients, namespace, cronjob)
    name = job.metadata.name
    limit = timeout or (job.spec.active_deadline_seconds or DEFAULT_TIMEOUT) + 30.0
    started = time.monotonic()
    while True:
        current = clients.batch.read_namespaced_job(name, namespace)
        done = _finished(current)
        if done is not None:
            succeeded, reason = done
            s = current.status
            begin, end = s.start_time, s.completion_time
            if begin is not None and end is not None:
                took = (end - begin).total_seconds()
            else:
                took = time.monotonic() - started
            return JobResult(name, succeeded, took, _output(clients, namespace, name), reason)
        if time.monotonic() - started > limit:
            raise PlatformError(f"job {namespace}/{name} still running after {limit:.0f}s")
        poll()
        time.sleep(0.5)
