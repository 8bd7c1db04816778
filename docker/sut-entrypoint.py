"""The reference SUT image's entrypoint: configure ``reference-peer serve`` from the suite's hand-off.

What the image connector hands over (docs/sut-manifest.md, "What the suite gives a spawned SUT"):
``MIMI_CONFORMANCE_SUITE_CA``, ``MIMI_CONFORMANCE_REFERENCE_ADDRESS``, ``MIMI_CONFORMANCE_SUT_DOMAINS``
and ``MIMI_CONFORMANCE_SUT_TLS_DIR`` (``<domain>.pem``/``.key`` issued by the suite CA),
``MIMI_CONFORMANCE_MIMI_PORT`` and ``MIMI_CONFORMANCE_CONTROL_PORT``. ``MIMI_CONSENT_MODE`` (image
setting, default ``immediate``) is the server's consent mode; ``MIMI_HUB_TRANSFER`` (``on``, the
default, or ``off``) switches the hub-transfer extension, with the embedded reference SUT's settings.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"mimi-reference-sut: {name} is not set: start this image through the suite's image connector")
    return value


def main() -> None:
    tls_dir = Path(required("MIMI_CONFORMANCE_SUT_TLS_DIR"))
    domains = [d for d in required("MIMI_CONFORMANCE_SUT_DOMAINS").split(",") if d]
    # The container shares the host's network (the connector's network_mode host): loopback only.
    address = os.environ.get("MIMI_LISTEN_ADDRESS", "127.0.0.1")
    config = {
        "listen": {"address": address, "port": int(os.environ.get("MIMI_CONFORMANCE_MIMI_PORT", "8443"))},
        # The suite CA issued both the reference peers' certificates and this server's own.
        "tls": {"ca": required("MIMI_CONFORMANCE_SUITE_CA")},
        "providers": [
            {"domain": domain, "cert": str(tls_dir / f"{domain}.pem"), "key": str(tls_dir / f"{domain}.key")}
            for domain in domains
        ],
        "consent_mode": os.environ.get("MIMI_CONSENT_MODE", "immediate"),
        "control": {"address": address, "port": int(os.environ.get("MIMI_CONFORMANCE_CONTROL_PORT", "8480"))},
        "peers": {"*.ref.test": required("MIMI_CONFORMANCE_REFERENCE_ADDRESS")},
    }
    if os.environ.get("MIMI_HUB_TRANSFER", "on") == "on":
        config["hub_transfer"] = {
            "accepts_from": "any", "cutover_timeout_ms": 8000, "prepare_timeout_ms": 5000, "redirect_retention_days": 30,
        }
    path = Path("/tmp/peer.yaml")
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    os.execv(sys.executable, [sys.executable, "-m", "reference_peer.cli", "serve", "--config", str(path)])


if __name__ == "__main__":
    main()
