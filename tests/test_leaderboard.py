"""The leaderboard ranks completed runs and never prints an undefined AUROC as a number."""

from __future__ import annotations

from medbench.leaderboard import format_leaderboard, leaderboard


def entry(run_id: str, val: float | None, edema: float | None, status: str = "completed") -> dict:
    metrics = {"macro": {"auroc": val}, "per_class": {"Edema": {"auroc": edema}, "Fracture": {"auroc": None}}}
    return {
        "id": run_id,
        "name": f"exp-{run_id}",
        "status": status,
        "best_epoch": 2,
        "classes": ["Edema", "Fracture"],
        "val": metrics,
        "test": metrics,
    }


def test_ranked_by_validation_mean_auroc_with_undefined_last() -> None:
    frame = leaderboard(
        [entry("a", 0.7, 0.6), entry("b", None, None), entry("c", 0.9, 0.8), entry("d", 0.99, 0.9, "failed")]
    )
    assert list(frame["run"]) == ["c", "a", "b"]
    text = format_leaderboard(frame)
    assert "0.9000" in text and "0.8000 / 0.8000" in text
    fracture = next(line for line in text.splitlines() if line.startswith("Fracture"))
    assert fracture.split()[1:] == ["undefined", "/", "undefined"] * 3
    assert "nan" not in text.lower() and "0.0000" not in text


def test_empty() -> None:
    assert format_leaderboard(leaderboard([])) == "no completed experiments"
