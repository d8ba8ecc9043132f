"""The Events a kubelet records about its pods (reasons of pkg/kubelet/events/event.go), so
`kubectl describe pod` and `kubectl get events` tell what happened: Started, Killing, BackOff,
Unhealthy, Failed (ErrImagePull, CreateContainerConfigError). Sent from a small queue thread so
the sync loop never waits on them; an Event that cannot be sent is dropped, as client-go's
broadcaster drops them under pressure."""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import threading
import uuid
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from finchsim.platform.kubernetes.client import Clients


class EventRecorder:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=1000)
        self.thread = threading.Thread(target=self._send, name="kubelet-events", daemon=True)
        self.thread.start()

    def record(self, pod: dict[str, Any], kind: str, reason: str, message: str, node: str) -> None:
        """Queue one Event about `pod` (`kind`: Normal or Warning)."""
        meta = pod["metadata"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "kubelet", "host": node},
            "reportingComponent": "kubelet",
            "reportingInstance": node,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(body)

    def _send(self) -> None:
        while (body := self.queue.get()) is not None:
            # The API server may be away (restarting): the Event is dropped, the thread lives.
            with contextlib.suppress(ApiException, HTTPError, OSError):
                self.clients.core.create_namespaced_event(body["metadata"]["namespace"], body)

    def stop(self) -> None:
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(None)
        self.thread.join(timeout=5)
