"""Throughput and peak memory of the 15-minute traffic assets on one synthetic day.

    .venv/bin/python -m benchmarks.traffic_15m [--events N] [--separate-runs K] [--home DIR] [--json out.json]

In a temporary NDR_HOME (or ``--home``): provision one project, generate one day (96 windows) of
synthetic PAN-OS traffic for one tenant with about N sessions, then

1. stage figures: one single-run backfill of the 96 windows per asset (``delta``, then
   ``pair_counts``, then ``fg_a``), so each stage runs exactly the asset's code. The step time comes
   from the run's event log (STEP_START -> STEP_SUCCESS), the whole-run time from a wall clock
   around the call; the difference is orchestration overhead. Peak RSS of the Spark driver JVM and
   of this Python process is reset before each stage (``/proc/<pid>/clear_refs``) and read after.
2. orchestration: all three assets in one single-run backfill of the 96 windows, against K runs of
   one window each (K evenly spaced windows of the day; with K < 96 the 96-run figure is
   extrapolated from the mean run). Each approach gets its own fresh Dagster instance.

Timed figures are not part of the test suite: they depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_EVENTS = 200_000
WINDOWS_PER_DAY = 96
BUCKET = "ndr-bench"
TENANT = ("bench", "tenant1")
FEATURE_SPEC_VERSION = "v1"
DEFAULT_DAY = "2026-01-05"  # a Monday: the generator's weekday rhythm
STAGES = {
    "delta": "read + DQ + delta (host and peer slices), publish",
    "pair_counts": "read + DQ + pair counts, publish",
    "fg_a": "read delta partitions + FG-A, publish",
}
MIB = 1024 * 1024
INSTANCES_FOLDER = "bench-instances"  # one fresh Dagster instance per approach


# ---------------------------------------------------------------- memory


def spark_driver_pid(parent: int | None = None) -> int | None:
    """The local Spark driver: the ``java`` process whose parent is this process (pyspark starts it)."""
    parent = os.getpid() if parent is None else parent
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces; the parent pid follows the state.
        comm = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        if ppid == parent and comm == "java":
            return int(stat.parent.name)
    return None


def _status_kib(pid: int | str, field_name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _clear_peak(pid: int | str) -> bool:
    """Resets the process's peak RSS (VmHWM) to its current RSS; False where the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class MemoryPeak:
    jvm_mib: float | None  # Spark driver JVM (None: no local driver found)
    python_mib: float
    since_reset: bool  # False: cumulative peak since the process started
    jvm_start_mib: float | None = None  # the JVM's RSS when the peak was reset (a JVM keeps its heap)


class PeakMemory:
    """Peak RSS of the Spark driver JVM and of this process between :meth:`reset` and :meth:`read`."""

    def __init__(self, jvm_pid: int | None):
        self.jvm_pid = jvm_pid
        self.resettable = True
        self.jvm_start_kib: int | None = None

    def reset(self) -> None:
        python_ok = _clear_peak("self")
        jvm_ok = self.jvm_pid is None or _clear_peak(self.jvm_pid)
        self.resettable = python_ok and jvm_ok
        self.jvm_start_kib = _status_kib(self.jvm_pid, "VmRSS") if self.jvm_pid is not None else None

    def read(self) -> MemoryPeak:
        jvm = _status_kib(self.jvm_pid, "VmHWM") if self.jvm_pid is not None else None
        python = _status_kib("self", "VmHWM")
        if python is None:  # ru_maxrss is in KiB on Linux
            python = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = None if self.jvm_start_kib is None else self.jvm_start_kib / 1024
        return MemoryPeak(None if jvm is None else jvm / 1024, python / 1024, self.resettable, start)


# ---------------------------------------------------------------- timings


@dataclass
class RunTiming:
    """One Dagster run: wall clock of the whole call, the run and its steps from the event log."""

    windows: int
    wall_s: float  # the whole backfill_project call: load definitions, execute in process, read the result
    run_s: float  # RUN_START -> RUN_SUCCESS/RUN_FAILURE
    steps_s: dict[str, float]  # asset name -> STEP_START -> STEP_SUCCESS/STEP_FAILURE
    materializations: dict[str, dict] = field(default_factory=dict)

    @property
    def step_total_s(self) -> float:
        return sum(self.steps_s.values())

    @property
    def overhead_s(self) -> float:
        return self.wall_s - self.step_total_s


def _asset_of_step(step_key: str) -> str:
    for name in STAGES:
        if step_key == name or step_key.endswith("__" + name) or step_key.endswith("." + name):
            return name
    return step_key


def run_timing(instance, run_id: str, wall_s: float, windows: int, materializations: dict) -> RunTiming:
    """Reads the step and run durations of ``run_id`` from the instance's event log."""
    from dagster import DagsterEventType as Event

    starts: dict[str, float] = {}
    steps: dict[str, float] = {}
    run_start = run_end = None
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == Event.STEP_START:
            starts[entry.step_key] = entry.timestamp
        elif kind in (Event.STEP_SUCCESS, Event.STEP_FAILURE) and entry.step_key in starts:
            steps[_asset_of_step(entry.step_key)] = entry.timestamp - starts[entry.step_key]
        elif kind == Event.RUN_START:
            run_start = entry.timestamp
        elif kind in (Event.RUN_SUCCESS, Event.RUN_FAILURE):
            run_end = entry.timestamp
    run_s = (run_end - run_start) if run_start is not None and run_end is not None else float("nan")
    return RunTiming(windows, wall_s, run_s, steps, materializations)


def timed_backfill(instance, project: str, first: str, last: str, assets: list[str] | None = None) -> RunTiming:
    """One single-run backfill of ``[first, last]`` (all assets, or ``assets``), raising if it fails."""
    from ndr_jobs.backfill import backfill_project

    began = time.perf_counter()
    outcome = backfill_project(project, first, last, instance=instance, asset_selection=assets)
    wall = time.perf_counter() - began
    outcome.raise_on_failure()
    return run_timing(instance, outcome.run_id, wall, outcome.partitions, outcome.materializations)


# ---------------------------------------------------------------- data


def choose_scale(events: int, *, day: datetime, hosts: int, seed: int, scratch: Path) -> float:
    """The generator ``scale`` that gives about ``events`` sessions on ``day``.

    Normal traffic is a Poisson draw proportional to ``scale``; the injected scenarios add a fixed
    number of sessions. One day at scale 1 in a scratch lake measures both.
    """
    from ndr_jobs.synthetic.generate import generate_traffic
    from ndr_resources.lake import LocalLake

    try:
        probe = generate_traffic(
            LocalLake(root=str(scratch)), bucket=BUCKET, tenants=[TENANT], start=day, days=1, seed=seed,
            fmt="parquet", hosts_per_tenant=hosts,
        ).tenants[0]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    normal = probe.sessions - probe.scenario_sessions
    return max(0.01, (events - probe.scenario_sessions) / max(normal, 1))


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def window_keys(day: datetime) -> list[str]:
    """The 96 partition keys of the project's first day (first window: the one touching midnight)."""
    from ndr_assets.partitions import FIFTEEN_MINUTE_KEY_FORMAT
    from ndr_assets.transforms.windows import SLICE_MINUTES, floor_to_window_start

    first = floor_to_window_start(day)
    starts = (first + timedelta(minutes=SLICE_MINUTES * i) for i in range(WINDOWS_PER_DAY))
    return [start.strftime(FIFTEEN_MINUTE_KEY_FORMAT) for start in starts]


def spread(keys: list[str], k: int) -> list[str]:
    """``k`` evenly spaced keys (all of them when ``k >= len(keys)``), in order."""
    k = max(1, min(k, len(keys)))
    return [keys[i * len(keys) // k] for i in range(k)]


# ---------------------------------------------------------------- the benchmark


def machine_facts(spark) -> dict[str, Any]:
    import dagster
    import pyspark

    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    conf = spark.sparkContext.getConf()
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_total_gib": round(mem_kib / 1024 / 1024, 1),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "os": platform.platform(),
        "python": platform.python_version(),
        "java": spark.sparkContext._jvm.java.lang.System.getProperty("java.version"),
        "spark_master": spark.sparkContext.master,
        "spark_driver_memory": conf.get("spark.driver.memory", "default"),
        "spark_shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
        "pyspark": pyspark.__version__,
        "dagster": dagster.__version__,
    }


def run_benchmark(
    *, events: int, separate_runs: int, home: Path, day: datetime, hosts: int, seed: int, fmt: str, log
) -> dict[str, Any]:
    """Everything the module measures, as a JSON-serialisable dict (see the module docstring)."""
    import dagster as dg

    from ndr_jobs.backfill import use_home
    from ndr_jobs.demo import project_name_for
    from ndr_jobs.instance import write_instance_config
    from ndr_jobs.synthetic.generate import generate_traffic
    from ndr_resources.environments import resources_for
    from ndr_resources.lake import LocalLake
    from ndr_resources.parameter_store.sqlite import SqliteParameterStore
    from seeds.provision import provision

    os.environ["NDR_ENV"] = "local"
    paths = use_home(home)
    project = project_name_for(*TENANT)
    lake = LocalLake(root=str(paths.lake_root))
    store = SqliteParameterStore(path=str(paths.parameters_db))
    # Both raw readers read what the generator writes (provisioning refuses formats that disagree).
    raw_format = {"delta_builder": {"input": {"format": fmt}}, "pair_counts_builder": {"traffic_input": {"format": fmt}}}
    provision(store, lake, project_name=project, bucket=BUCKET, feature_spec_version=FEATURE_SPEC_VERSION,
              org1=TENANT[0], org2=TENANT[1], start_date=day.date().isoformat(), spec_overrides=raw_format)

    log(f"Sizing the day for about {events:,} sessions ({hosts} hosts)")
    scale = choose_scale(events, day=day, hosts=hosts, seed=seed, scratch=home / "scratch-lake")
    log(f"Generating one day at scale {scale:.3f}")
    generation = generate_traffic(
        lake, bucket=BUCKET, tenants=[TENANT], start=day, days=1, seed=seed, fmt=fmt, scale=scale,
        hosts_per_tenant=hosts,
    )
    tenant = generation.tenants[0]
    raw = paths.lake_root / BUCKET / "paloalto" / TENANT[0] / TENANT[1]
    data = {
        "day": day.date().isoformat(),
        "windows": tenant.windows,
        "sessions": tenant.sessions,
        "sessions_requested": events,
        "hosts": hosts,
        "scale": round(scale, 4),
        "format": fmt,
        "mini_batches": tenant.mini_batches,
        "malformed": tenant.malformed_total,
        "late": tenant.late_sessions,
        "raw_mib": round(_folder_bytes(raw) / MIB, 1),
        "generation_s": round(generation.seconds, 1),
    }

    # The assets' SparkResource session, started now so that no stage pays for the JVM start-up.
    spark = resources_for("local")["spark"].session()
    memory = PeakMemory(spark_driver_pid())
    machine = machine_facts(spark)
    keys = window_keys(day)
    first, last = keys[0], keys[-1]
    instances_root = home / INSTANCES_FOLDER

    def instance_for(name: str):
        folder = instances_root / name
        write_instance_config(folder)
        return dg.DagsterInstance.local_temp(str(folder))

    def measured(instance, label: str, start: str, end: str, assets: list[str] | None = None):
        log(label)
        memory.reset()
        timing = timed_backfill(instance, project, start, end, assets)
        return timing, memory.read()

    # The first Spark jobs of a JVM pay for class loading and code generation; one unmeasured run
    # of one window keeps that cost out of whichever stage would come first.
    # The project's first window: the only one whose FG-A needs no earlier delta.
    log(f"Warm-up: one unmeasured run of window {first}, all assets")
    instance = instance_for("warm-up")
    try:
        data["warm_up_s"] = round(timed_backfill(instance, project, first, first).wall_s, 1)
    finally:
        instance.dispose()

    stages = {}
    instance = instance_for("stages")
    try:
        for name in STAGES:
            timing, peak = measured(instance, f"Stage {name}: one run of {len(keys)} windows", first, last, [name])
            stages[name] = {"timing": timing, "memory": peak}
    finally:
        instance.dispose()

    instance = instance_for("single-run")
    try:
        single, single_peak = measured(instance, f"Single-run backfill of {len(keys)} windows, all assets", first, last)
    finally:
        instance.dispose()

    sampled = spread(keys, separate_runs)
    separate: list[RunTiming] = []
    instance = instance_for("separate-runs")
    try:
        memory.reset()
        for i, key in enumerate(sampled, 1):
            log(f"Separate run {i}/{len(sampled)}: window {key}, all assets")
            separate.append(timed_backfill(instance, project, key, key))
        separate_peak = memory.read()
    finally:
        instance.dispose()
    machine["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    return _report(machine, data, stages, single, single_peak, separate, separate_peak, memory)


def _report(machine, data, stages, single, single_peak, separate, separate_peak, memory) -> dict[str, Any]:
    sessions = data["sessions"]

    def rate(seconds: float) -> int | None:
        return round(sessions / seconds) if seconds > 0 else None

    def rounded(seconds: float) -> float | None:
        return None if seconds != seconds else round(seconds, 2)  # NaN (no run events) -> null

    stage_rows = {}
    for name, measured in stages.items():
        t: RunTiming = measured["timing"]
        step = t.steps_s.get(name, t.step_total_s)
        stage_rows[name] = {
            "what": STAGES[name],
            "step_s": round(step, 2),
            "step_events_per_s": rate(step),
            "run_s": rounded(t.run_s),
            "wall_s": round(t.wall_s, 2),
            "wall_events_per_s": rate(t.wall_s),
            "overhead_s": round(t.wall_s - step, 2),
            "rows_out": t.materializations.get(name, {}).get("rows_out"),
            **_memory_fields(measured["memory"]),
        }
    k = len(separate)
    separate_wall = sum(t.wall_s for t in separate)
    separate_steps = sum(t.step_total_s for t in separate)
    per_run = separate_wall / k
    projected = per_run * WINDOWS_PER_DAY
    orchestration = {
        "single_run": {
            "runs": 1,
            "windows": single.windows,
            "wall_s": round(single.wall_s, 2),
            "run_s": rounded(single.run_s),
            "steps_s": {name: round(s, 2) for name, s in single.steps_s.items()},
            "step_total_s": round(single.step_total_s, 2),
            "overhead_s": round(single.overhead_s, 2),
            "events_per_s": rate(single.wall_s),
            **_memory_fields(single_peak),
        },
        "separate_runs": {
            "runs": k,
            "windows_per_run": 1,
            "measured_wall_s": round(separate_wall, 2),
            "measured_step_total_s": round(separate_steps, 2),
            "measured_overhead_s": round(separate_wall - separate_steps, 2),
            "mean_run_wall_s": round(per_run, 2),
            "mean_run_step_s": round(separate_steps / k, 2),
            "mean_run_dagster_s": rounded(sum(t.run_s for t in separate) / k),
            "mean_run_steps_s": {
                name: round(sum(t.steps_s.get(name, 0.0) for t in separate) / k, 2) for name in STAGES
            },
            "wall_s_for_96_windows": round(projected, 1),
            "extrapolated": k < WINDOWS_PER_DAY,
            "events_per_s_for_96_windows": rate(projected),
            **_memory_fields(separate_peak),
        },
        "separate_over_single": round(projected / single.wall_s, 2) if single.wall_s > 0 else None,
    }
    return {
        "machine": machine,
        "data": data,
        "stages": stage_rows,
        "orchestration": orchestration,
        "peak_memory_since": "stage start" if memory.resettable else "process start (clear_refs not permitted)",
    }


def _memory_fields(peak: MemoryPeak) -> dict[str, Any]:
    return {
        "jvm_peak_rss_mib": None if peak.jvm_mib is None else round(peak.jvm_mib),
        "jvm_rss_at_start_mib": None if peak.jvm_start_mib is None else round(peak.jvm_start_mib),
        "python_peak_rss_mib": round(peak.python_mib),
    }


# ---------------------------------------------------------------- output


def print_report(report: dict[str, Any], console) -> None:
    """The figures as rich tables (the same numbers as the JSON)."""
    from rich.table import Table

    def facts(title: str, rows: list[tuple[str, str]]) -> Table:
        table = Table(title=title, show_header=False)
        table.add_column("fact")
        table.add_column("value", justify="right")
        for row in rows:
            table.add_row(*row)
        return table

    console.print(facts("Machine", [(k.replace("_", " "), str(v)) for k, v in report["machine"].items()]))
    d = report["data"]
    console.print(facts("Generated input (one tenant, one day)", [
        ("day / windows", f"{d['day']} / {d['windows']}"),
        ("sessions (raw TRAFFIC records) = events", f"{d['sessions']:,} (asked for about {d['sessions_requested']:,})"),
        ("hosts / generator scale", f"{d['hosts']} / {d['scale']:g}"),
        ("mini-batches / format", f"{d['mini_batches']} / {d['format']}"),
        ("malformed / late records", f"{d['malformed']:,} / {d['late']:,}"),
        ("raw size on disk", f"{d['raw_mib']} MiB"),
        ("generation time", f"{d['generation_s']} s"),
        ("unmeasured warm-up run (1 window)", f"{d['warm_up_s']} s"),
    ]))

    stages = Table(
        title=f"Stages: one single-run backfill of {d['windows']} windows per asset "
        f"(peak RSS since {report['peak_memory_since']})"
    )
    for column in ("asset", "step s", "events/s (step)", "run wall s", "events/s (wall)", "orchestration s",
                   "rows out", "JVM peak MiB (RSS at start)", "Python peak MiB"):
        stages.add_column(column, justify="left" if column == "asset" else "right")
    for name, row in report["stages"].items():
        stages.add_row(
            name, f"{row['step_s']:.1f}", _count(row["step_events_per_s"]), f"{row['wall_s']:.1f}",
            _count(row["wall_events_per_s"]), f"{row['overhead_s']:.1f}", _count(row["rows_out"]), _jvm(row),
            _count(row["python_peak_rss_mib"]),
        )
    console.print(stages)
    for name, row in report["stages"].items():
        console.print(f"  [bold]{name}[/]: {row['what']}")

    o = report["orchestration"]
    single, separate = o["single_run"], o["separate_runs"]
    k = separate["runs"]
    projection = "extrapolated: mean run x 96" if separate["extrapolated"] else "measured"
    orchestration = Table(title=f"Orchestration: delta, pair_counts and fg_a over the {d['windows']} windows")
    for column in ("approach", "runs", "measured wall s", "steps s", "orchestration s", "wall s for 96 windows",
                   "events/s", "JVM peak MiB (RSS at start)", "Python peak MiB"):
        orchestration.add_column(column, justify="left" if column == "approach" else "right")
    orchestration.add_row(
        "single-run backfill", "1", f"{single['wall_s']:.1f}", f"{single['step_total_s']:.1f}",
        f"{single['overhead_s']:.1f}", f"{single['wall_s']:.1f} (measured)", _count(single["events_per_s"]),
        _jvm(single), _count(single["python_peak_rss_mib"]),
    )
    orchestration.add_row(
        f"separate runs, 1 window each ({k} evenly spaced)", str(k), f"{separate['measured_wall_s']:.1f}",
        f"{separate['measured_step_total_s']:.1f}", f"{separate['measured_overhead_s']:.1f}",
        f"{separate['wall_s_for_96_windows']:.1f} ({projection})", _count(separate["events_per_s_for_96_windows"]),
        _jvm(separate), _count(separate["python_peak_rss_mib"]),
    )
    console.print(orchestration)
    console.print(
        "  single run, per step: " + ", ".join(f"{n} {s:.1f} s" for n, s in single["steps_s"].items())
        + f"; Dagster run (start -> success) {_seconds(single['run_s'])}"
    )
    console.print(
        "  separate runs, mean per run: "
        + ", ".join(f"{n} {s:.2f} s" for n, s in separate["mean_run_steps_s"].items())
        + f"; steps {separate['mean_run_step_s']:.2f} s, Dagster run {_seconds(separate['mean_run_dagster_s'])}, "
        f"wall {separate['mean_run_wall_s']:.2f} s"
    )
    console.print(
        f"  96 separate runs / one single run = [bold]{o['separate_over_single']}x[/]"
        + (f" (extrapolated from {k} runs)" if separate["extrapolated"] else "")
    )


def _jvm(row: dict[str, Any]) -> str:
    peak, start = row["jvm_peak_rss_mib"], row["jvm_rss_at_start_mib"]
    return "-" if peak is None else f"{peak:,} ({_count(start)})"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _count(value) -> str:
    return "-" if value is None else f"{value:,}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.traffic_15m",
        description=(
            "Generate one day (96 windows) of about N synthetic sessions for one tenant, then print events/s "
            "and peak memory of delta, pair_counts and FG-A separately, and a single-run backfill of the 96 "
            "windows against K separate one-window runs."
        ),
    )
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS,
                        help="about how many sessions the day has (default %(default)s)")
    parser.add_argument("--separate-runs", type=int, default=WINDOWS_PER_DAY, metavar="K",
                        help="one-window runs to measure, evenly spaced over the day; K < 96 extrapolates to 96 "
                        "(default %(default)s)")
    parser.add_argument("--home", type=Path, default=None,
                        help="NDR_HOME to use and keep (default: a temporary folder, deleted afterwards)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the figures as JSON")
    parser.add_argument("--hosts", type=int, default=120, help="hosts of the synthetic tenant (default %(default)s)")
    parser.add_argument("--day", default=DEFAULT_DAY,
                        help="the generated day and project start, ISO date (default %(default)s)")
    parser.add_argument("--format", dest="fmt", default="jsonl", choices=["jsonl", "parquet", "panos_csv"],
                        help="raw mini-batch format (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default %(default)s)")
    args = parser.parse_args(argv)
    if args.events <= 0 or args.separate_runs <= 0:
        parser.error("--events and --separate-runs must be positive")
    try:
        date.fromisoformat(args.day)
    except ValueError:
        parser.error(f"--day {args.day!r} is not an ISO date (YYYY-MM-DD)")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import dagster as dg
    from rich.console import Console

    # The beta parameters the assets rely on are documented choices (as in the ndr CLI).
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    console = Console(width=max(Console().width, 160))
    began = time.perf_counter()

    def log(message: str) -> None:
        console.print(f"[dim]{time.perf_counter() - began:7.1f} s[/] {message}")

    home = args.home or Path(tempfile.mkdtemp(prefix="ndr-bench-"))
    # Same data every time: no stale partitions or runs of an earlier benchmark in a kept home.
    shutil.rmtree(home / "lake" / BUCKET, ignore_errors=True)
    shutil.rmtree(home / INSTANCES_FOLDER, ignore_errors=True)
    try:
        report = run_benchmark(
            events=args.events, separate_runs=args.separate_runs, home=home,
            day=datetime.fromisoformat(args.day).replace(tzinfo=UTC), hosts=args.hosts, seed=args.seed,
            fmt=args.fmt, log=log,
        )
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    arguments = argv if argv is not None else sys.argv[1:]
    report["command"] = " ".join([".venv/bin/python -m benchmarks.traffic_15m", *arguments])
    report["total_s"] = round(time.perf_counter() - began, 1)
    print_report(report, console)
    console.print(f"Benchmark finished in {report['total_s']:.0f} s.")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
        console.print(f"Figures written to {args.json}")
    return report


if __name__ == "__main__":
    main()
