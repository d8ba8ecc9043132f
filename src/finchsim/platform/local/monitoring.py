"""The monitoring stack of the local platform: Prometheus (Debian's) with the cluster's alert
rules, Alertmanager with the cluster's alertmanager.yml (its receivers have no integrations,
so nothing leaves the machine), and one node exporter for this machine.

Scrape jobs keep the cluster's job names (prometheus.yml in cluster/monitoring): the finch pods
come from a file_sd list the platform rewrites as pods come and go, labelled like the
cluster's relabelling does (namespace, pod, container, job = the app label)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from finchsim.platform.local.processes import Proc, spawn
from finchsim.platform.local.supervisor import Supervised

ENV = {"PATH": "/usr/sbin:/usr/bin:/bin"}


class LocalMonitoring:
    def __init__(
        self,
        run_dir: Path,
        monitoring: Path,
        ports: dict[str, int],
        scrape_interval: str,
        register: Callable[[Proc, str], None],
        log: Callable[[str], None],
    ) -> None:
        self.dir = run_dir / "monitoring"
        self.rules = sorted((monitoring / "prometheus" / "rules").glob("*.yml"))
        self.alertmanager_config = monitoring / "alertmanager" / "alertmanager.yml"
        self.ports = ports
        self.interval = scrape_interval
        self.register = register
        self.log = log
        self.procs: dict[str, Supervised] = {}

    def start(self) -> None:
        for name in ("prometheus", "alertmanager", "node-exporter"):
            (self.dir / name).mkdir(parents=True)
        self._start(
            "node-exporter",
            [
                "prometheus-node-exporter",
                f"--web.listen-address=127.0.0.1:{self.ports['node-exporter']}",
                f"--collector.textfile.directory={self.dir / 'node-exporter'}",
            ],
        )
        self._start(
            "alertmanager",
            [
                "prometheus-alertmanager",
                f"--config.file={self.alertmanager_config}",
                f"--storage.path={self.dir / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{self.ports['alertmanager']}",
                "--cluster.listen-address=",  # no HA gossip (it would listen on 0.0.0.0:9094)
                "--log.level=warn",
            ],
        )
        prom = self.dir / "prometheus"
        (prom / "prometheus.yml").write_text(yaml.safe_dump(self._config(), sort_keys=False))
        for name in ("targets", "kubelets"):
            (prom / f"{name}.json").write_text("[]")
        self._start(
            "prometheus",
            [
                "prometheus",
                f"--config.file={prom / 'prometheus.yml'}",
                f"--storage.tsdb.path={prom / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
        )

    def _start(self, name: str, argv: list[str]) -> None:
        self.procs[name] = Supervised(
            name,
            lambda: spawn(argv, env=ENV, cwd=self.dir / name, log_path=self.dir / name / "out.log"),
            self.log,
            self.register,
        )

    def _config(self) -> dict[str, object]:
        def static(job: str, port: str, **extra: object) -> dict[str, object]:
            return {
                "job_name": job,
                **extra,
                "static_configs": [{"targets": [f"127.0.0.1:{self.ports[port]}"]}],
            }

        def listed(job: str, targets: str, **extra: object) -> dict[str, object]:
            files = [str(self.dir / "prometheus" / f"{targets}.json")]
            return {
                "job_name": job,
                **extra,
                "file_sd_configs": [{"files": files, "refresh_interval": "5s"}],
            }

        def kubelet(job: str, path: str, **extra: object) -> dict[str, object]:
            return listed(
                job,
                "kubelets",
                scheme="https",
                metrics_path=path,
                tls_config={"insecure_skip_verify": True},  # the kubelet's own cert
                **extra,
            )

        return {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": [str(r) for r in self.rules],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [f"127.0.0.1:{self.ports['alertmanager']}"]}]}
                ]
            },
            "scrape_configs": [
                static("prometheus", "prometheus"),
                static("alertmanager", "alertmanager"),
                # The machine itself stands for every virtual node (they share its kernel).
                static("node-exporter", "node-exporter"),
                static("kube-state-metrics", "metrics", honor_labels=True),
                # Its series' `namespace`/`ingress` name the Finch Ingress (as in the cluster).
                static("ingress-nginx", "ingress-metrics", honor_labels=True),
                # The kubelets (finch's; the list is written while it runs): cAdvisor, and from
                # /metrics only the volume statistics, as the cluster's `kubelet` job keeps.
                kubelet("kubelet-cadvisor", "/metrics/cadvisor", honor_labels=True),
                kubelet(
                    "kubelet",
                    "/metrics",
                    metric_relabel_configs=[
                        {
                            "source_labels": ["__name__"],
                            "regex": "kubelet_volume_stats_.*",
                            "action": "keep",
                        }
                    ],
                ),
                listed("finch-pods", "targets", honor_labels=True),
            ],
        }

    def write_target_list(self, targets: list[dict[str, Any]], name: str = "targets") -> None:
        """Prometheus' file_sd targets of the pods, or (`name="kubelets"`) of the kubelets,
        rewritten only when they changed."""
        path = self.dir / "prometheus" / f"{name}.json"
        if not path.exists():
            path.write_text("[]")
        text = json.dumps(targets, indent=1)
        if path.read_text() != text:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)

    def check(self) -> None:
        """Restart what has exited (raises PlatformError for one that keeps exiting)."""
        for supervised in self.procs.values():
            supervised.check()

    def stop(self) -> None:
        for supervised in self.procs.values():
            supervised.stop()
        self.procs.clear()
