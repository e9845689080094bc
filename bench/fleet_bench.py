"""Own fleet, in pure code: how the geofences and the last-mile ETA behave on generated GPS traces.

For ``--traces`` deliveries (seeded: routes of 2–15 km from a São Paulo depot, 20–45 km/h, GPS noise
5–25 m, random stops; a share with a planned-route detour), each trace is stepped through the geofence
state machine exactly as the processor does (``rastro_normalization.domain.geofence.step``), and every
``shipment.position`` it publishes is turned into a last-mile ETA by eta's own code
(``rastro_eta.domain.last_mile.estimate_last_mile``). Printed and written to
``bench/results/fleet-<date>.json``:

- geofence correctness: traces with exactly one arrival, one departure; long stops raised for the stops
  driven (≥ the threshold) and for none shorter; deviations raised for detours and for no clean trace;
- last-mile accuracy against the true arrival (the first fix the driver reached the door): mean absolute
  error in minutes and the share of arrivals by the promise time, by how far ahead the estimate was made;
- the geofence step's CPU per position.

No broker or database: the throughput of ``POST /v1/telemetry`` is ``bench/telemetry_bench.py``'s.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rastro_eta.domain.last_mile import LastMileParameters, estimate_last_mile
from rastro_normalization.domain.geo import haversine_m
from rastro_normalization.domain.geofence import FenceSettings, FenceState, ShipmentGeometry, step
from rastro_normalization.domain.traces import TracePoint, drive, road_polyline
from rastro_normalization.fleet.processor import shipment_position

DEPOT = (-23.5505, -46.6333)
RESULTS = Path(__file__).parent / "results"
BUCKETS = ((0, 10), (10, 30), (30, 60), (60, 10_000))  # minutes ahead of the true arrival


@dataclass
class Tally:
    traces: int = 0
    one_arrival: int = 0
    one_departure: int = 0
    stops_driven: int = 0
    stops_raised: int = 0
    short_stops_raised: int = 0
    detours: int = 0
    detours_raised: int = 0
    clean_deviations: int = 0
    steps: int = 0
    step_seconds: float = 0.0
    errors: dict[tuple[int, int], list[float]] = field(default_factory=dict)
    kept: dict[tuple[int, int], list[bool]] = field(default_factory=dict)


def _destination(rng: random.Random) -> tuple[float, float]:
    distance, bearing = rng.uniform(2_000, 15_000), rng.uniform(0, 360)
    dlat = distance * math.cos(math.radians(bearing)) / 111_195
    dlon = distance * math.sin(math.radians(bearing)) / (111_195 * math.cos(math.radians(DEPOT[0])))
    return DEPOT[0] + dlat, DEPOT[1] + dlon


def _arrival(trace: list[TracePoint], home: tuple[float, float]) -> datetime:
    """The true arrival: the first fix within 60 m of the door (the dwell follows)."""
    for p in trace:
        if haversine_m(p.latitude, p.longitude, *home) <= 60:
            return p.recorded_at
    return trace[-1].recorded_at


def run_trace(seed: int, tally: Tally, settings: FenceSettings, last_mile: LastMileParameters) -> None:
    rng = random.Random(seed)
    home = _destination(rng)
    route = road_polyline(DEPOT, home, seed=seed)
    stops = [(rng.uniform(0.15, 0.8), rng.choice((120, 300, 900, 1200))) for _ in range(rng.randrange(3))]
    detour = (0.3, 0.6, rng.choice((-2500.0, 2500.0))) if rng.random() < 0.25 else None
    trace = drive(
        route,
        start=datetime(2026, 11, 30, 8, tzinfo=UTC),
        seed=seed,
        speed_kmh=rng.uniform(20, 45),
        noise_m=rng.uniform(5, 25),
        stops=stops,
        detour=detour,
    )
    geometry = ShipmentGeometry(destination=home, origin=DEPOT, route=route)
    arrived_at = _arrival(trace, home)
    state, kinds = FenceState(), []
    for point in trace:
        started = time.perf_counter()
        moved = step(state, geometry, point, settings)
        tally.step_seconds += time.perf_counter() - started
        tally.steps += 1
        state = moved.state
        kinds += [e.kind for e in moved.events]
        if moved.publish_position and point.recorded_at < arrived_at:
            estimate = estimate_last_mile(shipment_position("T", "V", point, moved), last_mile)
            if estimate is None:
                continue
            ahead = (arrived_at - point.recorded_at).total_seconds() / 60
            bucket = next(b for b in BUCKETS if b[0] <= ahead < b[1])
            # the door is reached at arrived_at; the estimate includes the minutes spent at the door
            error = (estimate.expected_at - arrived_at).total_seconds() / 60 - last_mile.handling_minutes
            tally.errors.setdefault(bucket, []).append(error)
            tally.kept.setdefault(bucket, []).append(arrived_at <= estimate.promise_at)
    tally.traces += 1
    tally.one_arrival += kinds.count("arrived") == 1
    tally.one_departure += kinds.count("departed_origin") == 1
    long_enough = sum(1 for _, seconds in stops if seconds >= settings.long_stop_s + 120)
    tally.stops_driven += long_enough
    tally.stops_raised += min(kinds.count("long_stop"), long_enough)
    tally.short_stops_raised += max(kinds.count("long_stop") - long_enough, 0)
    if detour is not None:
        tally.detours += 1
        tally.detours_raised += kinds.count("route_deviation") >= 1
    else:
        tally.clean_deviations += kinds.count("route_deviation")


def report(tally: Tally) -> dict[str, Any]:
    accuracy = {}
    for bucket in BUCKETS:
        errors = tally.errors.get(bucket, [])
        if not errors:
            continue
        label = f"{bucket[0]}-{bucket[1]} min" if bucket[1] < 10_000 else f">{bucket[0]} min"
        accuracy[label] = {
            "estimates": len(errors),
            "mae_minutes": round(statistics.fmean(abs(e) for e in errors), 1),
            "bias_minutes": round(statistics.fmean(errors), 1),
            "arrived_by_promise": round(sum(tally.kept[bucket]) / len(errors), 3),
        }
    return {
        "date": date.today().isoformat(),
        "traces": tally.traces,
        "exactly_one_arrival": tally.one_arrival,
        "exactly_one_departure": tally.one_departure,
        "long_stops": {"driven": tally.stops_driven, "raised": tally.stops_raised},
        "long_stops_for_shorter_stops": tally.short_stops_raised,
        "detours": {"driven": tally.detours, "raised": tally.detours_raised},
        "deviations_on_clean_traces": tally.clean_deviations,
        "last_mile_accuracy": accuracy,
        "geofence_step_us_per_position": round(tally.step_seconds / max(tally.steps, 1) * 1e6, 1),
        "positions": tally.steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=300)
    args = parser.parse_args()
    tally, settings, last_mile = Tally(), FenceSettings(), LastMileParameters()
    for seed in range(args.traces):
        run_trace(seed, tally, settings, last_mile)
    result = report(tally)
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"fleet-{result['date']}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
