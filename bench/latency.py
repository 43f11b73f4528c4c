"""Part 1, request latency: the name form's POST on flasky and on the book's two baselines.

All three apps run under the same gunicorn settings against the same PostgreSQL database and
SMTP sink. flasky's worker runs meanwhile (threads pool), so its deliveries compete for the
CPU as the baselines' do. Repeats are interleaved (every app once, then again) so that a
noisy neighbour slows all of them alike.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from bench import http_load
from bench.report import Table, ms, ratio
from bench.results import Results
from bench.sizes import Sizes
from bench.stack import GUNICORN_ARGS, Stack
from bench.stats import median, percentile


@dataclass(frozen=True)
class Case:
    app: str  # "sync", "thread" or "flasky"
    label: str
    app_spec: str
    delay: float

    @property
    def key(self) -> str:
        return f"{self.app}@{self.delay:g}s"


SYNC = ("sync", "book 6-4, mail.send in the request", "bench.baseline_sync:app")
THREAD = ("thread", "book 6-5, mail.send in a thread", "bench.baseline_thread:app")
FLASKY = ("flasky", "flasky", "web:create_app()")
# 6-4 at 2 s is left out: it takes the 2 s in every request by construction, which would add
# about 7 minutes to a full run.
CASES = [
    Case(*SYNC, 0.0),
    Case(*SYNC, 1.0),
    Case(*THREAD, 0.0),
    Case(*THREAD, 1.0),
    Case(*THREAD, 2.0),
    Case(*FLASKY, 0.0),
    Case(*FLASKY, 1.0),
    Case(*FLASKY, 2.0),
]
PERCENTILES = (50, 95, 99)


def run(stack: Stack, sizes: Sizes, results: Results) -> None:
    modes = {
        "sequential": (sizes.sequential_requests, 1),
        "concurrent": (sizes.concurrent_requests, sizes.concurrent_clients),
    }
    stack.reset()
    stack.sink.set_delay(0.0)
    worker = stack.start_worker("--pool", "threads", "--concurrency", "32")
    ports: dict[str, int] = {}
    servers = []
    for spec in {case.app_spec for case in CASES}:
        server, ports[spec] = stack.start_gunicorn(spec)
        servers.append(server)
        http_load.run(ports[spec], 32, 8)  # warm every gunicorn process and its pools
    # samples[(mode, case key, percentile)] = one value per repeat
    samples: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for _ in range(sizes.repeats):
        for case in CASES:
            stack.sink.set_delay(case.delay)
            before = stack.sink.accepted
            for mode, (requests, clients) in modes.items():
                latencies = http_load.run(ports[case.app_spec], requests, clients)
                for p in PERCENTILES:
                    samples[(mode, case.key, p)].append(percentile(latencies, p))
            if case.app == "thread":
                # Its threads are still sending: let them finish before the next case.
                total = sum(requests for requests, _ in modes.values())
                stack.sink.wait_for(before + total, timeout=120)
    for process in [*servers, worker]:
        stack.stop_process(process)
    stack.sink.set_delay(0.0)
    _report(sizes, modes, samples, results)


def _report(
    sizes: Sizes,
    modes: dict[str, tuple[int, int]],
    samples: dict[tuple[str, str, int], list[float]],
    results: Results,
) -> None:
    table = Table(
        "1. Request latency: POST / with a new name (the admin is emailed)",
        [
            "requests",
            "app",
            "SMTP delay",
            "p50",
            "p95",
            "p99",
            "p50: 6-4 at 1 s ÷ this",
            "p99: this ÷ 6-5 at 1 s",
        ],
        chart="latency",
    )
    for mode, (requests, clients) in modes.items():
        fig = {
            (key, p): median(samples[(mode, key, p)])
            for key in (c.key for c in CASES)
            for p in PERCENTILES
        }
        for (key, p), value in fig.items():
            results.figures[f"latency.{mode}.{key}.p{p}"] = value
        for case in CASES:
            for p in PERCENTILES:
                points = results.series.setdefault(f"latency.{mode}.p{p}.{case.app}", [])
                points.append((case.delay, fig[(case.key, p)]))
        results.figures[f"latency.{mode}.requests"] = requests
        results.figures[f"latency.{mode}.clients"] = clients
        who = f"{requests} sequential" if clients == 1 else f"{requests}, {clients} clients"
        for case in CASES:
            table.add(
                who,
                case.label,
                f"{case.delay:.0f} s",
                *(ms(fig[(case.key, p)]) for p in PERCENTILES),
                ratio(fig[("sync@1s", 50)] / fig[(case.key, 50)]),
                f"{fig[(case.key, 99)] / fig[('thread@1s', 99)]:.2f}",
            )
    table.notes.append(
        f"gunicorn `{' '.join(GUNICORN_ARGS)}` for every app; the GET for the CSRF token and "
        "cookie is not timed. The book's 6-4 is not measured at 2 s: it waits for the SMTP "
        "server in every request. Medians over "
        f"{sizes.repeats} repeat(s) of each percentile."
    )
    results.blocks.append(table)
