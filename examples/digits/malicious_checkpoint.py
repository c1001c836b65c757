"""Write a checkpoint an attacker would swap in: a real ``torch.save`` zip whose pickle runs
``os.system`` when loaded with plain ``torch.load(weights_only=False)`` or ``pickle``.

Its payload only creates a marker file, so the demo can show that it never ran.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


if __name__ == "__main__":
    torch.save({"0.weight": Payload(Path(sys.argv[2]))}, sys.argv[1])
