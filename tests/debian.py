"""Programs some tests run that come from Debian's packages, installed when missing (as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def debian_program(program: str, package: str | None = None) -> str:
    """The path of `program`, after `apt-get install`ing its package if it is not there yet."""
    if found := shutil.which(program) or _in_sbin(program):
        return found
    if os.geteuid() != 0:
        raise RuntimeError(f"{program} is missing: install Debian's {package or program} package")
    wait = ["-o", "DPkg::Lock::Timeout=600"]  # another install under way (CI's, a person's): wait for it
    for command in (
        ["apt-get", *wait, "update", "-q"],
        ["apt-get", *wait, "install", "-y", "-q", package or program],
    ):
        subprocess.run(  # noqa: S603 - fixed commands
            command, check=True, capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        )
    if found := shutil.which(program) or _in_sbin(program):
        return found
    raise RuntimeError(f"{program} is still missing after installing {package or program}")


def _in_sbin(program: str) -> str | None:
    path = Path("/usr/sbin") / program
    return str(path) if path.is_file() else None
