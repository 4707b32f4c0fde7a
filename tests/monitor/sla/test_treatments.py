"""The availability figure under each treatment of excluded time, for a small month worked
out by hand (monitor/sla/treatments.py)."""

from __future__ import annotations

from monitor.sla.treatments import treatments


def test_a_small_month_under_each_treatment() -> None:
    """A 30-day month of a service open 10 hours a day (18,000 minutes in hours): 120 down,
    600 in announced maintenance, 300 unmonitored (the monitor was down), 60 of a
    provider's unavailability; the rest, 16,920, up. Outside hours: 25,200."""
    states = {
        "up": 16_920,
        "down": 120,
        "maintenance": 600,
        "unmonitored": 300,
        "provider_unavailable": 60,
        "outside_hours": 25_200,
    }
    by_key = {t.key: (t.up, t.counted, t.ratio) for t in treatments(states)}
    assert by_key == {
        # (a) the contract: 16,920 of the 17,040 measured minutes.
        "contract": (16_920, 17_040, 16_920 / 17_040),  # 99.296 %
        # (b) maintenance as available: + 600 up and counted.
        "maintenance_up": (17_520, 17_640, 17_520 / 17_640),  # 99.320 %
        # (c) maintenance as unavailable: + 600 counted only.
        "maintenance_down": (16_920, 17_640, 16_920 / 17_640),  # 95.918 %
        # (d) unmonitored as up: + 300 up and counted.
        "unmonitored_up": (17_220, 17_340, 17_220 / 17_340),  # 99.308 %
        # (e) unmonitored as down: + 300 counted only.
        "unmonitored_down": (16_920, 17_340, 16_920 / 17_340),  # 97.578 %
    }
    assert [round(t.ratio * 100, 3) for t in treatments(states) if t.ratio] == [
        99.296,
        99.320,
        95.918,
        99.308,
        97.578,
    ]


def test_a_month_with_nothing_measured_has_no_figure_under_the_contract() -> None:
    [contract, maintenance_up, *_] = treatments({"maintenance": 60, "outside_hours": 100})
    assert (contract.counted, contract.ratio) == (0, None)
    assert maintenance_up.ratio == 1.0
