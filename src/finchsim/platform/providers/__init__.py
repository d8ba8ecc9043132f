"""Providers: the small part that makes a Kubernetes cluster exist for `KubernetesPlatform`
(hatch's environment backends are the model: each fits in a screen or two)."""
