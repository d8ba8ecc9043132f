"""The kubelet's serving certificate: self-signed, for the node addresses, key 0600 in the run
directory (metrics-server runs with `--kubelet-insecure-tls`, as against a kubelet whose
certificate is not signed by the cluster CA)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from finchsim.platform.tools import run


def serving_context(directory: Path, addresses: list[str]) -> ssl.SSLContext:
    """A server TLS context with a new self-signed certificate for `addresses`."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert, key = directory / "kubelet.crt", directory / "kubelet.key"
    if not cert.exists() or not key.exists():
        san = ",".join(f"IP:{a}" for a in addresses)
        old = os.umask(0o077)
        try:
            run(
                [
                    "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
                    "-subj", "/CN=finchsim-kubelet", "-addext", f"subjectAltName={san}",
                    "-keyout", str(key), "-out", str(cert),
                ],
                timeout=60,
            )  # fmt: skip
        finally:
            os.umask(old)
        key.chmod(0o600)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    return context
