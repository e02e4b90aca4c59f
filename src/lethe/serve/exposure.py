"""Who can reach a server: loopback or not, and the rule that an exposed one needs an API key.

Kept free of heavy imports so `lethe serve` can refuse a bad `--host` before torch loads.
"""

from __future__ import annotations

import ipaddress

from lethe.errors import InputError, Where


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (``localhost``, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse to listen beyond loopback without an API key."""
    if not is_loopback(host) and not api_key:
        raise InputError(
            f"host {host} is reachable from other machines: give an API key (--api-key) or listen on 127.0.0.1",
            Where(field="host"),
        )
