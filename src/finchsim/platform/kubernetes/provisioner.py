"""A small dynamic volume provisioner, for clusters with no storage of their own (KWOK).

It does what an external provisioner (sig-storage-lib-external-provisioner) does for the
StorageClasses whose `provisioner` is ours: for each Pending claim of such a class — once the
scheduler has picked a node (`volume.kubernetes.io/selected-node`) when the class says
WaitForFirstConsumer — it creates a PersistentVolume pre-bound to the claim (`claimRef`), of the
claim's size and access modes, and, for a ReadWriteOnce volume, pinned to the chosen node's zone
like a zonal disk. The real PV controller then binds them. Released volumes of ours whose
reclaim policy is Delete are deleted."""

from __future__ import annotations

from kubernetes.client import (
    V1HostPathVolumeSource,
    V1NodeSelector,
    V1NodeSelectorRequirement,
    V1NodeSelectorTerm,
    V1ObjectMeta,
    V1ObjectReference,
    V1PersistentVolume,
    V1PersistentVolumeSpec,
    V1VolumeNodeAffinity,
)
from kubernetes.client.exceptions import ApiException

from finchsim.platform.kubernetes.client import Clients

PROVISIONER = "finchsim.io/simulated"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ZONE = "topology.kubernetes.io/zone"


def _classes(clients: Clients) -> dict[str, tuple[str, str]]:
    """Our StorageClasses: name -> (volumeBindingMode, reclaimPolicy); "" is the default."""
    ours = {}
    for sc in clients.storage.list_storage_class().items:
        if sc.provisioner != PROVISIONER:
            continue
        value = (sc.volume_binding_mode or "Immediate", sc.reclaim_policy or "Delete")
        ours[sc.metadata.name] = value
        annotations = sc.metadata.annotations or {}
        if annotations.get("storageclass.kubernetes.io/is-default-class") == "true":
            ours[""] = value
    return ours


def reconcile(clients: Clients) -> list[str]:
    """One round: provision what is waiting, delete what was released. Returns the PV names
    created or deleted, for the log."""
    classes = _classes(clients)
    if not classes:
        return []
    done = []
    for pvc in clients.core.list_persistent_volume_claim_for_all_namespaces().items:
        if pvc.status.phase != "Pending" or pvc.spec.volume_name:
            continue
        cls = pvc.spec.storage_class_name or ""
        if cls not in classes:
            continue
        mode, reclaim = classes[cls]
        node = (pvc.metadata.annotations or {}).get(SELECTED_NODE)
        if mode == "WaitForFirstConsumer" and not node:
            continue
        name = f"pvc-{pvc.metadata.uid}"
        affinity = None
        if node and "ReadWriteMany" not in (pvc.spec.access_modes or []):
            zone = (clients.core.read_node(node).metadata.labels or {}).get(ZONE)
            if zone:
                affinity = V1VolumeNodeAffinity(
                    required=V1NodeSelector(
                        node_selector_terms=[
                            V1NodeSelectorTerm(
                                match_expressions=[
                                    V1NodeSelectorRequirement(
                                        key=ZONE, operator="In", values=[zone]
                                    )
                                ]
                            )
                        ]
                    )
                )
        pv = V1PersistentVolume(
            metadata=V1ObjectMeta(name=name, annotations={PROVISIONED_BY: PROVISIONER}),
            spec=V1PersistentVolumeSpec(
                capacity={"storage": pvc.spec.resources.requests["storage"]},
                access_modes=pvc.spec.access_modes,
                storage_class_name=pvc.spec.storage_class_name or _default_name(clients),
                persistent_volume_reclaim_policy=reclaim,
                volume_mode=pvc.spec.volume_mode,
                host_path=V1HostPathVolumeSource(
                    path=f"/simulated/{pvc.metadata.namespace}/{name}"
                ),
                claim_ref=V1ObjectReference(
                    namespace=pvc.metadata.namespace, name=pvc.metadata.name, uid=pvc.metadata.uid
                ),
                node_affinity=affinity,
            ),
        )
        try:
            clients.core.create_persistent_volume(pv)
            done.append(name)
        except ApiException as exc:
            if exc.status != 409:  # made in an earlier round, not bound yet
                raise
    for pv in clients.core.list_persistent_volume().items:
        ours = (pv.metadata.annotations or {}).get(PROVISIONED_BY) == PROVISIONER
        if (
            ours
            and pv.status.phase == "Released"
            and pv.spec.persistent_volume_reclaim_policy == ("Delete")
        ):
            clients.core.delete_persistent_volume(pv.metadata.name)
            done.append(pv.metadata.name)
    return done


def _default_name(clients: Clients) -> str:
    for sc in clients.storage.list_storage_class().items:
        annotations = sc.metadata.annotations or {}
        if annotations.get("storageclass.kubernetes.io/is-default-class") == "true":
            return str(sc.metadata.name)
    return ""
