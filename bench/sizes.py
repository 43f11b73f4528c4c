"""How big each part of a run is: the full run (~25 minutes) and `--quick` (~4 minutes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    repeats: int
    sequential_requests: int
    concurrent_requests: int
    concurrent_clients: int
    throughput_emails: int
    slow_emails: int
    slow_naive_emails: int
    scaling_processes: tuple[int, ...]
    backlog_emails: int
    backlog_repeats: int
    priority_backlog: int
    redis_probe_emails: int
    query_table_sizes: tuple[int, int]
    query_repetitions: int
    profile_emails: int
    bulk_emails: int  # queued with send_bulk while worker and beat run
    bulk_commit_every: int
    bulk_drained: int  # of them, delivered before the count stops
    bulk_loop_emails: int  # the send_email loop it is compared with (no worker)
    commit_probes: int  # single emails timed from commit to 250


FULL = Sizes(
    repeats=3,
    sequential_requests=50,
    concurrent_requests=200,
    concurrent_clients=8,
    throughput_emails=2000,
    slow_emails=2000,
    # The naive pattern sends 2 emails/s against the slow server: 300 would take 150 s a
    # repeat, so it gets a smaller batch; rates are compared, not times.
    slow_naive_emails=20,
    scaling_processes=(1, 2, 4),
    backlog_emails=10_000,
    # One drain takes about 90 s here: three would not fit the full run's 15 minutes.
    backlog_repeats=1,
    priority_backlog=10_000,
    redis_probe_emails=1000,
    query_table_sizes=(10_000, 1_000_000),
    query_repetitions=200,
    profile_emails=1000,
    bulk_emails=1_000_000,
    bulk_commit_every=10_000,
    bulk_drained=100_000,
    bulk_loop_emails=20_000,
    commit_probes=200,
)

QUICK = Sizes(
    repeats=1,
    sequential_requests=10,
    concurrent_requests=40,
    concurrent_clients=8,
    throughput_emails=300,
    slow_emails=500,
    slow_naive_emails=6,
    scaling_processes=(1, 2),
    backlog_emails=500,
    backlog_repeats=1,
    priority_backlog=2_000,
    redis_probe_emails=200,
    query_table_sizes=(10_000, 100_000),
    query_repetitions=30,
    profile_emails=200,
    bulk_emails=20_000,
    bulk_commit_every=10_000,
    bulk_drained=5_000,
    bulk_loop_emails=2_000,
    commit_probes=200,
)
