"""The SQLite crash campaign, folded into ``tools/chaos.py`` (which also runs on
PostgreSQL + Valkey): this runs it on SQLite with the options given.

    python tools/campaigns/crash.py [--hosts 3] [--workflows 600] [--seconds 180]
                                    [--pause-every N] [--seed 1]

See tools/chaos.py for what it does, checks and prints.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CHAOS = Path(__file__).resolve().parents[1] / "chaos.py"

if __name__ == "__main__":
    os.execv(sys.executable, [sys.executable, str(CHAOS), "--store", "sqlite", *sys.argv[1:]])
