"""Offline schema validation of rendered objects against one pinned Kubernetes version.

Built-in kinds use kubernetes-validate's strict schemas (unknown fields are errors). Custom
resources (the VPA) are validated against the openAPIV3Schema of the CRDs vendored in
`cluster/crds/`, made strict the same way: a property not declared is an error unless the CRD
says `x-kubernetes-preserve-unknown-fields`."""

from __future__ import annotations

from collections.abc import Iterable
from copy import deepcopy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from finchsim.errors import Problem
from finchsim.platform.manifests import Rendered

KUBERNETES_VERSION = "1.34.0"

CrdSchemas = dict[tuple[str, str], dict[str, Any]]  # (apiVersion, kind) -> JSON schema


def load_crd_schemas(crd_dir: Path) -> CrdSchemas:
    """The strict schema of every served version of every CRD in `crd_dir`."""
    schemas: CrdSchemas = {}
    for path in sorted(crd_dir.glob("*.yaml")) if crd_dir.is_dir() else []:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec.get("versions", []):
                schema = version.get("schema", {}).get("openAPIV3Schema")
                if version.get("served") and schema:
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    schemas[key] = _strict(deepcopy(schema))
    return schemas


def validate_objects(objects: Iterable[Rendered], crds: CrdSchemas) -> list[Problem]:
    """One Problem per invalid object, naming its source file, the object and the field."""
    problems: list[Problem] = []
    for item in objects:
        key = (str(item.obj.get("apiVersion")), item.kind)
        try:
            if key in crds:
                jsonschema.validate(item.obj, crds[key])
            else:
                kubernetes_validate.validate(item.obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(
                Problem(
                    item.source,
                    item.ref,
                    (
                        f"no schema for {key[0]} {key[1]} in Kubernetes {KUBERNETES_VERSION} "
                        "(a custom resource needs its CRD in cluster/crds/)"
                    ),
                )
            )
        except jsonschema.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            field = f"{item.ref} {path}" if path else item.ref
            problems.append(Problem(item.source, field, exc.message))
    return problems


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("type") == "object" and "properties" in schema:
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        for name, prop in schema["properties"].items():
            schema["properties"][name] = _strict(prop)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = _strict(schema[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            schema[key] = [_strict(s) for s in schema[key]]
    return schema
