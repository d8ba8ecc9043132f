"""When `up` gives up waiting, it says why each pod is not ready: the crashing container's
last log lines, the failing probe with what it got, the scheduler's message for a Pending pod.

A small overlay of three Deployments, each broken in one way, in a copy of the project."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from finchsim.errors import PlatformError
from finchsim.platform.local.platform import LocalPlatform
from finchsim.project import Project

pytestmark = pytest.mark.integration

SERVE_503 = """\
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"postgres": "unreachable"}'
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["LISTEN_PORT"])), Handler).serve_forever()
"""


def deployment(name: str, command: list[str], extra: str = "", replicas: int = 1) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app: {name}}}}}
          template:
            metadata: {{labels: {{app: {name}}}}}
            spec:
              containers:
                - name: {name}
                  image: finch-sim/finch-backend:dev
                  command: {json.dumps(command)}
                  env: [{{name: LISTEN_PORT, value: "8000"}}]
                  ports: [{{name: http, containerPort: 8000}}]
        """
    ) + textwrap.indent(textwrap.dedent(extra), " " * 10)


def test_the_timeout_message_gives_a_reason_per_unready_pod(project_copy: Project) -> None:
    overlay = project_copy.cluster / "overlays" / "broken"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "namespace: demo\nbuildMetadata: [originAnnotations]\nresources: [broken.yaml]\n"
    )
    crash = "import sys; print('boom: cannot reach the database', flush=True); sys.exit(3)"
    probe = """\
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
        """
    # The probe keeps it unready even though the local controller starts an unscheduled pod's
    # containers (a known fidelity gap): Pending is the reason given either way.
    big = """\
        resources: {requests: {cpu: "64"}}
        readinessProbe: {tcpSocket: {port: http}, periodSeconds: 1}
        """
    (overlay / "broken.yaml").write_text(
        "---\n".join(
            [
                deployment("crasher", ["python", "-c", crash], replicas=2),
                deployment("unready", ["python", "-c", SERVE_503], probe),
                deployment("big", ["python", "-c", "import time; time.sleep(600)"], big),
            ]
        )
    )
    platform = LocalPlatform(project_copy, "broken")
    with pytest.raises(PlatformError) as info:
        platform.up(timeout=15)
    message = str(info.value)
    print(message)
    lines = message.splitlines()
    # kustomize emits the Deployments by name, and the controller creates pods in that order.
    assert lines[0] == (
        "the topology was not ready after 15s: big 0/1 ready; crasher 0/2 ready; unready 0/1 ready"
    )
    assert re.fullmatch(
        r"  big-\S+: Pending: 0/3 nodes are available: 3 Insufficient cpu\.", lines[1]
    ), lines[1]
    assert re.fullmatch(
        r"  crasher-\S+ \(and 1 more of crasher\): container crasher exited with code 3, "
        r"restarted \d time\(s\) \((CrashLoopBackOff|running again)\); last log lines:",
        lines[2],
    ), lines[2]
    assert lines[3] == "    boom: cannot reach the database"
    assert re.fullmatch(
        r"  unready-\S+: container unready: readiness probe failing \(\d+ in a row\): "
        r'GET http://127\.0\.0\.1:\d+/healthz: HTTP 503: \{"postgres": "unreachable"\}',
        lines[4],
    ), lines[4]
    assert len(lines) == 5
    assert not platform.run_dir.exists(), "up did not clean up after the timeout"
