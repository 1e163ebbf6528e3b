"""The chaos campaign's checks (tools/campaigns/records.py) catch each kind of violation
in a written step log, and pass a clean one: a check that never fails proves nothing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "campaigns"))
from records import judge, read_runs


def write_log(tmp: Path, lines: list[str]) -> Path:
    log = tmp / "steps.log"
    log.write_text("".join(line + "\n" for line in lines))
    return log


def final(
    tokens: dict[str, str], status: str = "COMPLETE"
) -> dict[str, tuple[str, dict[str, Any]]]:
    return {"w": (status, {f"s{n}": token for n, token in tokens.items()})}


def test_a_clean_log_with_a_rerun_after_a_kill_passes(tmp_path: Path) -> None:
    # Step 1 ran on 10 (committed), step 2 began on 10, which was killed at 3.0; 20 ran it.
    log = write_log(
        tmp_path,
        [
            "begin w 1 10 1.0",
            "end w 1 10 1.5",
            "begin w 2 10 2.0",
            "begin w 2 20 5.0",
            "end w 2 20 5.5",
        ],
    )
    v = judge(read_runs(log), final({"1": "10:1.0", "2": "20:5.0"}), {10: 3.0}, 2, 16)
    assert v.problems == []
    assert (v.reruns, v.inflight_at_kills, v.lost, v.overlaps) == (1, 1, 0, 0)


def test_a_committed_step_run_again_is_caught(tmp_path: Path) -> None:
    log = write_log(
        tmp_path, ["begin w 1 10 1.0", "end w 1 10 1.5", "begin w 1 20 5.0", "end w 1 20 5.5"]
    )
    v = judge(read_runs(log), final({"1": "10:1.0"}), {20: 6.0}, 1, 16)
    assert v.committed_reruns == 1
    assert any("after its commit" in p for p in v.problems)


def test_a_rerun_on_a_live_host_is_caught(tmp_path: Path) -> None:
    log = write_log(
        tmp_path, ["begin w 1 10 1.0", "end w 1 10 1.5", "begin w 1 20 0.5", "end w 1 20 0.8"]
    )
    v = judge(read_runs(log), final({"1": "10:1.0"}), {}, 1, 16)
    assert any("while 20 lived" in p for p in v.problems)
    assert any("in flight at kills" in p for p in v.problems)


def test_two_hosts_at_once_is_an_overlap(tmp_path: Path) -> None:
    log = write_log(
        tmp_path,
        ["begin w 1 10 1.0", "begin w 2 20 1.2", "end w 1 10 1.5", "end w 2 20 1.7"],
    )
    v = judge(read_runs(log), final({"1": "10:1.0", "2": "20:1.2"}), {}, 2, 16)
    assert v.overlaps == 1


def test_an_unfinished_or_stepless_workflow_is_lost(tmp_path: Path) -> None:
    log = write_log(tmp_path, ["begin w 1 10 1.0", "end w 1 10 1.5"])
    assert judge(read_runs(log), final({"1": "10:1.0"}, "RUNNABLE"), {}, 1, 16).lost == 1
    assert judge(read_runs(log), final({}), {}, 1, 16).lost == 1


def test_a_host_paused_past_its_lease_may_lose_its_run(tmp_path: Path) -> None:
    # 10 was stopped from 1.2 to 4.5 while running step 1; 20 ran it meanwhile (at once).
    lines = ["begin w 1 10 1.0", "begin w 1 20 3.5", "end w 1 20 4.0", "end w 1 10 4.6"]
    runs = read_runs(write_log(tmp_path, lines))
    pauses = {10: [(1.2, 4.5)]}
    v = judge(runs, final({"1": "20:3.5"}), {}, 1, 16, pauses)
    assert v.problems == []
    assert (v.reruns, v.inflight_at_pauses, v.overlaps) == (1, 1, 0)
    unpaused = judge(runs, final({"1": "20:3.5"}), {}, 1, 16)
    assert unpaused.overlaps == 1
    assert any("while 10 lived" in p for p in unpaused.problems)
