"""bench_originate's arithmetic and its refusal to run without its services (the benchmark itself is run by hand)."""

import pytest
from django.core.management import CommandError, call_command

from telephony.management.commands.bench_originate import figures, percentiles


def test_percentiles_are_nearest_rank_and_rounded_to_a_tenth():
    values = [float(n) for n in range(100, 0, -1)]  # 100 … 1, unsorted on purpose
    assert percentiles(values) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert percentiles([1.04, 7.0], ("p50", "p99")) == {"p50": 1.0, "p99": 7.0}
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None, "max": None}


def test_figures_count_refusals_and_unseen_originates_as_errors_and_leave_them_out_of_the_latencies():
    samples = [
        {"started": 10.0, "answered": 10.02, "status": "dialling", "arrived": 10.05},
        {"started": 10.0, "answered": 10.03, "status": "dialling", "arrived": None},
        {"started": 10.0, "answered": 10.01, "status": "refused", "arrived": None},
    ]
    result = figures(samples, operators=3, rounds=1)
    assert result["errors"] == {"not_dialling": 1, "originate_not_seen": 1}
    assert result["answers"] == {"dialling": 2, "refused": 1}
    assert result["post_to_originate_ms"]["max"] == 50.0 and result["answer_to_originate_ms"]["p50"] == 30.0
    assert result["post_to_answer_ms"]["p99"] == 30.0 and result["target"] == {"p99_ms_below": 200}


def test_it_refuses_to_run_without_postgresql_and_redis(settings):
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("bench_originate", "--operators", "1", "--rounds", "1")
