"""Offline evaluation: replay history in time order through the same model the service runs.

``OnlineModel`` is the service's handler without Kafka and Postgres: for each ``ShipmentChanged`` it
folds the shipment (``apply_change``), learns a delivery once (``sample_of`` + ``learn``) and predicts
(``predict``): the same domain functions, in the same order, on lane states of the same structure.

``evaluate`` trains on orders purchased before the cut, then replays every later event in time
order, learning online as deliveries happen, and scores the predictions made for the test orders at
purchase and at carrier hand-over against the real delivery dates, beside Olist's own estimate.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from rastro_eta.domain.lane_state import LaneState, learn
from rastro_eta.domain.lanes import LaneKey
from rastro_eta.domain.prediction import (
    ModelParameters,
    Prediction,
    is_predictable,
    predict,
    promise_ladder,
)
from rastro_eta.domain.shipment import ShipmentFacts, apply_change
from rastro_eta.domain.transit import sample_of
from rastro_eta.olist import OlistOrder, shipment_events
from rastro_events import ShipmentChanged, Status

__all__ = [
    "CALIBRATION_LEVELS",
    "MOMENTS",
    "Evaluation",
    "OnlineModel",
    "Scored",
    "calibrate_promise_quantile",
    "evaluate",
    "summarize",
]

MOMENTS = {Status.INFO_RECEIVED: "purchase", Status.IN_TRANSIT: "handover"}
CALIBRATION_LEVELS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


class OnlineModel:
    """In-memory lane states of one tenant, learning and predicting exactly as the service does."""

    def __init__(self, parameters: ModelParameters) -> None:
        self.parameters = parameters
        self.states: dict[LaneKey, LaneState] = {}
        self.shipments: dict[str, ShipmentFacts] = {}
        self._learned: set[str] = set()

    def observe(self, event: ShipmentChanged, *, want_prediction: bool = True) -> Prediction | None:
        shipment = apply_change(self.shipments.get(event.tracking_number), event)
        self.shipments[event.tracking_number] = shipment
        sample = sample_of(shipment)
        if sample is not None and sample.tracking_number not in self._learned:
            self._learned.add(sample.tracking_number)  # the service: UNIQUE(tenant, tracking number)
            p = self.parameters
            learn(self.states, sample, p.clock, half_life_days=p.half_life_days, bin_days=p.bin_days)
        if want_prediction and is_predictable(shipment.status):
            return predict(shipment, self.states, self.parameters)
        return None


@dataclass(frozen=True, slots=True)
class Scored:
    """One test order at one moment: the delivery date, ours, Olist's, and the promise ladder."""

    moment: str
    month: str
    region: str
    lane_level: str
    delivered: date
    expected: date
    promise: date
    olist: date
    ladder: tuple[date, ...] = ()
    """Promise dates at ``CALIBRATION_LEVELS``."""


@dataclass
class Evaluation:
    parameters: ModelParameters
    train_until: date
    test_from: date
    test_until: date | None
    orders: int = 0
    scored: list[Scored] = field(default_factory=list)
    events: int = 0


def _in_test(order: OlistOrder, test_from: date, test_until: date | None) -> bool:
    day = order.purchased_at.date()
    return (
        day >= test_from
        and (test_until is None or day < test_until)
        and order.delivered_at is not None
        and order.estimated_date is not None
        and order.delivered_at >= order.purchased_at
    )


def _region(order: OlistOrder) -> str:
    origin = (order.origin.state if order.origin else None) or "?"
    destination = (order.destination.state if order.destination else None) or "?"
    return f"{origin}→{destination}"


def evaluate(
    orders: Iterable[OlistOrder],
    parameters: ModelParameters,
    *,
    train_until: date,
    test_from: date | None = None,
    test_until: date | None = None,
    stop_at: datetime | None = None,
    ladder: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Evaluation:
    """Replay ``orders`` (history before ``train_until`` is learned only) and score the test orders.

    ``stop_at`` ends the replay there (calibration must not see what happened after its cut).
    """
    test_from = test_from or train_until
    result = Evaluation(parameters, train_until, test_from, test_until)
    timeline: list[tuple[datetime, int, int, ShipmentChanged]] = []
    tested: dict[str, OlistOrder] = {}
    for index, order in enumerate(orders):
        if order.purchased_at.date() >= train_until and _in_test(order, test_from, test_until):
            assert order.delivered_at is not None
            if stop_at is None or order.delivered_at < stop_at:  # a label from after the cut: unseen
                tested[order.order_id] = order
        for seq, event in enumerate(shipment_events(order)):
            if stop_at is None or event.occurred_at < stop_at:
                timeline.append((event.occurred_at, index, seq, event))
    # Nothing after the last prediction to score can change a score: leave it out.
    needed = [t[0] for t in timeline if t[3].tracking_number in tested and t[3].new_status in MOMENTS]
    if needed:
        last = max(needed)
        timeline = [t for t in timeline if t[0] <= last]
    timeline.sort(key=lambda t: (t[0], t[1], t[2]))
    result.orders = len(tested)
    model = OnlineModel(parameters)
    for n, (_, _, _, event) in enumerate(timeline, start=1):
        tested_order = tested.get(event.tracking_number)
        moment = MOMENTS.get(event.new_status) if tested_order is not None else None
        prediction = model.observe(event, want_prediction=moment is not None)
        if progress is not None and n % 2000 == 0:
            progress(2000)
        if prediction is None or tested_order is None or moment is None:
            continue
        order = tested_order
        assert order.delivered_at is not None and order.estimated_date is not None
        shipment = model.shipments[event.tracking_number]
        result.scored.append(Scored(
            moment=moment, month=order.purchased_at.strftime("%Y-%m"), region=_region(order),
            lane_level=prediction.lane.level.value,
            delivered=parameters.clock.local_date(order.delivered_at),
            expected=prediction.expected_date, promise=prediction.promise_date, olist=order.estimated_date,
            ladder=promise_ladder(shipment, model.states, parameters, CALIBRATION_LEVELS) if ladder else (),
        ))  # fmt: skip
    if progress is not None:
        progress(len(timeline) % 2000)
    result.events = len(timeline)
    return result


def summarize(errors: Sequence[int]) -> dict[str, Any]:
    """Errors in days, delivered date − predicted date (positive: late)."""
    if not errors:
        return {"n": 0}
    absolute = sorted(abs(e) for e in errors)
    n = len(errors)
    return {
        "n": n,
        "mae_days": round(sum(absolute) / n, 3),
        "median_abs_days": float(absolute[(n - 1) // 2]),
        "p90_abs_days": float(absolute[max(math.ceil(0.9 * n), 1) - 1]),
        "bias_days": round(sum(errors) / n, 3),
        "on_time_share": round(sum(e <= 0 for e in errors) / n, 4),
        "within_1_day_share": round(sum(a <= 1 for a in absolute) / n, 4),
        "within_3_days_share": round(sum(a <= 3 for a in absolute) / n, 4),
    }


def errors_of(scored: Iterable[Scored], which: str) -> list[int]:
    return [(s.delivered - getattr(s, which)).days for s in scored]


def by_moment(evaluation: Evaluation) -> dict[str, list[Scored]]:
    grouped: dict[str, list[Scored]] = defaultdict(list)
    for s in evaluation.scored:
        grouped[s.moment].append(s)
    return grouped


def calibrate_promise_quantile(
    orders: Sequence[OlistOrder],
    parameters: ModelParameters,
    *,
    cut: date,
    validation_from: date,
    validation_until: date,
    margin: float = 0.02,
) -> tuple[float, dict[str, Any]]:
    """The smallest promise quantile whose on-time share, on orders purchased in the validation window
    (all before ``cut``, replayed with nothing after ``cut``), reaches Olist's own estimate's share on
    the same orders plus ``margin``, at both moments. The highest level if none does."""
    stop = datetime.combine(cut, datetime.min.time(), tzinfo=parameters.clock.zone)
    run = evaluate(orders, parameters, train_until=validation_from, test_until=validation_until, stop_at=stop)
    shares: dict[str, dict[str, float]] = {}
    for moment, scored in by_moment(run).items():
        olist = sum(s.delivered <= s.olist for s in scored) / len(scored)
        shares[moment] = {"olist": round(olist, 4)} | {
            f"{q:g}": round(sum(s.delivered <= s.ladder[i] for s in scored) / len(scored), 4)
            for i, q in enumerate(CALIBRATION_LEVELS)
        }
    chosen = CALIBRATION_LEVELS[-1]
    for q in CALIBRATION_LEVELS:
        if shares and all(v[f"{q:g}"] >= v["olist"] + margin for v in shares.values()):
            chosen = q
            break
    detail = {
        "validation_from": validation_from.isoformat(), "validation_until": validation_until.isoformat(),
        "cut": cut.isoformat(), "margin": margin, "orders": run.orders, "on_time_share": shares,
        "chosen": chosen,
    }  # fmt: skip
    return chosen, detail
