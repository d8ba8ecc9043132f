"""Every platform by name: `--platform local|kwok|context`.

The registry is an explicit dict of factories (no discovery magic); an unknown name fails
listing the valid ones. Only this module and the CLI import platform implementations: the rest
of finch-sim sees the `Platform` seam."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finchsim.errors import InputError, Problem
from finchsim.models.load import MODEL_FILE, load_model
from finchsim.platform import runstate
from finchsim.platform.base import Platform
from finchsim.platform.manifests import Rendered, load_file, load_files, render
from finchsim.project import Project

KWOK_SETTINGS = "cluster/kwok/cluster.yaml"


@dataclass(frozen=True)
class PlatformOptions:
    """What a command knows when it asks for a platform."""

    project: Project
    overlay: str = "production"
    log: Callable[[str], None] = field(default=lambda _msg: None)
    kubeconfig: Path | None = None  # context: the kubeconfig file (default ~/.kube/config)
    context: str | None = None  # context: the context name (default: the file's current)
    adopt: bool = False  # context: use namespaces finch-sim did not create
    settings: Path | None = None  # the platform's settings file, when not the project's own
    # Objects of these kinds are left out of what is applied (the bench's bare platform: no
    # workload controllers' objects, so it can start each workload's pod alone).
    without_kinds: frozenset[str] = frozenset()


def _objects(opts: PlatformOptions, with_monitoring: bool) -> list[Rendered]:
    project = opts.project
    objects = load_files(project, project.cluster / "crds") + render(project, opts.overlay)
    if with_monitoring:
        objects += render(project, "monitoring")
    return [o for o in objects if o.kind not in opts.without_kinds]


def _kwok(opts: PlatformOptions) -> Platform:
    from finchsim.platform.controlplane import controlplane_binaries
    from finchsim.platform.kubernetes.platform import KubernetesPlatform
    from finchsim.platform.providers.kwok import KwokProvider
    from finchsim.platform.providers.kwok_settings import load_kwok_settings

    project = opts.project
    path = opts.settings or project.root / KWOK_SETTINGS
    settings = load_kwok_settings(path, project.rel(path))
    storage = load_file(project, project.cluster / "kwok" / "storage.yaml")
    binaries = controlplane_binaries(project).by_name()
    provider = KwokProvider(settings, binaries, storage, "finchsim")
    model = load_model(project.root / MODEL_FILE, MODEL_FILE)
    return KubernetesPlatform(
        project, opts.overlay, provider, _objects(opts, False), load_model=model, log=opts.log
    )


def _local(opts: PlatformOptions) -> Platform:
    """The real control plane on 127.0.0.1 with finch's kubelet running pods as processes."""
    from finchsim.platform.controlplane import controlplane_binaries
    from finchsim.platform.kubernetes.platform import KubernetesPlatform
    from finchsim.platform.local.settings import load_settings
    from finchsim.platform.providers.local import LocalProvider

    project = opts.project
    path = opts.settings or project.cluster / "local" / "platform.yaml"
    settings = load_settings(path, project.rel(path))
    storage = load_file(project, project.cluster / "kwok" / "storage.yaml")
    binaries = controlplane_binaries(project).by_name()
    provider = LocalProvider(settings, binaries, storage, project.root, project=project)
    return KubernetesPlatform(project, opts.overlay, provider, _objects(opts, False), log=opts.log)


def _context(opts: PlatformOptions) -> Platform:
    from finchsim.platform.kubernetes.platform import KubernetesPlatform
    from finchsim.platform.providers.context import ContextProvider

    kubeconfig = opts.kubeconfig or Path.home() / ".kube" / "config"
    provider = ContextProvider(kubeconfig, opts.context, opts.adopt)
    return KubernetesPlatform(
        opts.project, opts.overlay, provider, _objects(opts, provider.with_monitoring), log=opts.log
    )


PLATFORMS: dict[str, Callable[[PlatformOptions], Platform]] = {
    "local": _local,
    "kwok": _kwok,
    "context": _context,
}


def platform_input_problems(name: str, project: Project, objects: list[Rendered]) -> list[Problem]:
    """What platform `name` itself reads, checked before a run starts anything: the local
    platform's settings and images, the kwok platform's settings and load model."""
    problems: list[Problem] = []
    if name not in PLATFORMS:
        return [
            Problem(
                "--platform",
                "",
                f"unknown platform {name!r}; expected one of: " + ", ".join(PLATFORMS),
            )
        ]
    if name == "local":
        from finchsim.platform.local.inputs import input_problems

        return input_problems(project, objects)
    if name == "kwok":
        from finchsim.platform.providers.kwok_settings import load_kwok_settings

        for path, loader in (
            (project.root / KWOK_SETTINGS, load_kwok_settings),
            (project.root / MODEL_FILE, load_model),
        ):
            try:
                loader(path, project.rel(path))
            except InputError as exc:
                problems += exc.problems
    return problems


def server_dry_run(project: Project, targets: dict[str, list[Rendered]]) -> list[Problem]:
    """Every problem a real kube-apiserver finds in `targets` (build target -> objects), on
    throwaway control planes from the pinned cache; one Problem when the cache is missing."""
    from finchsim.errors import PlatformError
    from finchsim.platform.controlplane import controlplane_binaries
    from finchsim.platform.kubernetes.dryrun import check_targets

    try:
        binaries = controlplane_binaries(project).by_name()
    except PlatformError as exc:
        return [
            Problem(
                "cluster/controlplane/binaries.yaml",
                "",
                (
                    f"the server-side dry run needs the control-plane binaries: {exc} (or pass "
                    "--no-server to check offline only)"
                ),
            )
        ]
    return check_targets(binaries, load_files(project, project.cluster / "crds"), targets)


def create(name: str, opts: PlatformOptions) -> Platform:
    """The platform called `name`; InputError listing the valid names when there is none."""
    if name not in PLATFORMS:
        raise InputError(
            [
                Problem(
                    "--platform",
                    "",
                    f"unknown platform {name!r}; expected one of: " + ", ".join(PLATFORMS),
                )
            ]
        )
    return PLATFORMS[name](opts)


def cleanup(project: Project, state: dict[str, Any]) -> None:
    """Remove what a run recorded in `state` left behind (its holder is gone)."""
    platform = state.get("platform", "local")
    run_dir = Path(state["run_dir"])
    provider_state = state.get("provider")
    if provider_state:
        if platform == "kwok":
            from finchsim.platform.controlplane import controlplane_binaries
            from finchsim.platform.providers import kwok

            kwok.cleanup(provider_state, controlplane_binaries(project).by_name())
        elif platform == "local":
            from finchsim.platform.controlplane import controlplane_binaries
            from finchsim.platform.providers import local

            local.cleanup(provider_state, controlplane_binaries(project).by_name())
        elif platform == "context":
            from finchsim.platform.providers import context

            context.cleanup(provider_state, run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    runstate.clear_state(project, state["run_id"])


def down(project: Project) -> str:
    """`finchsim down`: stop the running `up`, then clean up whatever it left."""
    state = runstate.read_state(project)
    if state is None:
        return "nothing is up"
    runstate.stop_holder(state)
    cleanup(project, state)
    return f"run {state['run_id']} ({state.get('platform', 'local')}) is down"
