"""The API key of `make dev`'s gateway, so that no web page can use the local stack.

A gateway without `GATEWAY_API_KEYS` serves anyone who reaches it, and on a laptop that is
every page the developer's browser opens: a page may send requests to `127.0.0.1:8000`. So
when no keys are configured, `make dev` creates a random key on its first start, keeps it in
`DATA_DIR/dev-api-key` (readable by its owner only) and starts the gateway with it as tenant
`dev`. The screen prints an `export` line; the CLI and the examples read the file themselves
when they talk to a gateway on this machine.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from cli.stack import ROOT
from settings import Settings

#: The tenant `make dev`'s key belongs to: runs are `dev/<workflow_id>` in Temporal.
DEV_TENANT = "dev"
KEY_FILE_NAME = "dev-api-key"
#: Host names of a gateway on this machine, the only one the dev key is ever sent to.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def key_file(settings: Settings) -> Path:
    return (ROOT / settings.data_dir / KEY_FILE_NAME).resolve()


def ensure_dev_api_key(settings: Settings) -> str:
    """The dev key, created (owner-only) on first use."""
    path = key_file(settings)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return key


def local_dev_api_key(settings: Settings, gateway_url: str) -> str | None:
    """The dev key for a gateway on this machine, if `make dev` created one."""
    if urlsplit(gateway_url).hostname not in LOCAL_HOSTS:
        return None
    path = key_file(settings)
    return path.read_text().strip() if path.exists() else None


def api_key_for(settings: Settings, gateway_url: str, given: str | None = None) -> str | None:
    """The key to send to `gateway_url`: the one given, else `WORKFLOW_STATION_API_KEY`, else
    `make dev`'s for a gateway on this machine."""
    return (
        given
        or os.environ.get("WORKFLOW_STATION_API_KEY")
        or local_dev_api_key(settings, gateway_url)
    )
