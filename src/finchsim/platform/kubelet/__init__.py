"""finch's kubelet: virtual nodes of a real control plane whose pods run as local processes."""

from finchsim.platform.kubelet.kubelet import Kubelet, KubeletConfig, cleanup_kubelet

__all__ = ["Kubelet", "KubeletConfig", "cleanup_kubelet"]
