"""Exporters that publish Kubernetes state in the vocabulary the alert rules use."""
