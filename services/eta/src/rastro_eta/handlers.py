"""The consumers of ``rastro.shipments.v1`` (remember the shipment, learn from deliveries, predict) and
of ``rastro.positions.v1`` (refine the ETA of an own-fleet shipment on its way: the last mile).

Runs inside the kit's ConsumerRunner, so each event is handled once (inbox), in the same transaction
as its effects, and the ``EtaPredicted`` it emits goes through the outbox. A prediction is published
only when its expected or promise date differs from the one last published for the shipment. A
delivery is learned once (``lane_samples`` is unique per shipment): its lanes' states are read
``FOR UPDATE`` in one fixed order, updated and written back in the same transaction, and the
prediction that was in force is kept beside the delivery for the KPIs.

A new sample does not re-predict the lane's other shipments in flight: each is re-predicted at its
own next state change.

A position refines only a shipment eta knows (from ``shipment.changed``) in a state where a vehicle
is bringing it (``last_mile.LAST_MILE_STATUSES``); one for an unknown shipment is dropped (logged):
positions come every few minutes, so the first one after the shipment's own event takes over, and
nothing is kept for shipments that may never be known. A position not newer than the newest one
handled is ignored. A last-mile ETA is published only the first time or when its arrival moved by more
than ``republish_minutes`` from the one last published.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from rastro_eta.adapters.last_mile_store import LastMileStore
from rastro_eta.adapters.repository import EtaRepository
from rastro_eta.domain.lane_state import learn
from rastro_eta.domain.lanes import lane_chain
from rastro_eta.domain.last_mile import (
    LastMileParameters,
    confidence_of,
    estimate_last_mile,
    last_mile_event,
    refines,
    worth_publishing,
)
from rastro_eta.domain.prediction import (
    ModelParameters,
    Prediction,
    eta_event,
    is_predictable,
    predict,
    prediction_changed,
)
from rastro_eta.domain.shipment import apply_change
from rastro_eta.domain.transit import sample_of
from rastro_events import Envelope, ShipmentChanged, ShipmentPosition
from rastro_kit.consumer import HandlerContext
from rastro_kit.logs import get_logger

__all__ = ["ShipmentChangedHandler", "ShipmentPositionHandler"]

log = get_logger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ShipmentChangedHandler:
    def __init__(self, parameters: ModelParameters, clock: Callable[[], datetime] = _utc_now) -> None:
        self._parameters = parameters
        self._clock = clock

    async def __call__(self, ctx: HandlerContext, envelope: Envelope, event: ShipmentChanged) -> None:
        tenant_id = envelope.tenantid
        repo = EtaRepository(ctx.conn)
        shipment = apply_change(await repo.shipment(tenant_id, event.tracking_number), event)
        await repo.save_shipment(tenant_id, shipment)
        sample = sample_of(shipment)
        # The same three steps as the offline evaluator (evaluation.OnlineModel): fold, learn once, predict.
        states = await repo.lane_states(
            tenant_id, lane_chain(shipment.attributes), for_update=sample is not None
        )
        if sample is not None and await repo.add_sample(tenant_id, sample):
            p = self._parameters
            changed = learn(states, sample, p.clock, half_life_days=p.half_life_days, bin_days=p.bin_days)
            await repo.save_lane_states(tenant_id, [states[key] for key in changed])
            in_force = await repo.last_prediction(tenant_id, shipment.tracking_number)
            if in_force is not None:
                delivered = p.clock.local_date(sample.delivered_at)
                await repo.record_outcome(tenant_id, shipment, in_force, delivered)
            log.info("eta_sample_learned", transit_days=round(sample.transit_days, 3))
        if is_predictable(shipment.status):
            await self._publish(ctx, repo, tenant_id, predict(shipment, states, self._parameters))

    async def _publish(
        self, ctx: HandlerContext, repo: EtaRepository, tenant_id: str, prediction: Prediction
    ) -> None:
        if not prediction_changed(
            await repo.last_prediction(tenant_id, prediction.tracking_number), prediction
        ):
            return
        predicted_at = self._clock()
        emitted = await ctx.emit(eta_event(prediction, predicted_at), time=predicted_at)
        await repo.save_prediction(tenant_id, prediction, predicted_at=predicted_at, event_id=emitted.id)
        log.info(
            "eta_predicted",
            expected_date=prediction.expected_date.isoformat(),
            promise_date=prediction.promise_date.isoformat(),
            lane=prediction.lane.text,
            sample_size=prediction.sample_size,
            confidence=prediction.confidence,
        )


class ShipmentPositionHandler:
    def __init__(
        self,
        parameters: ModelParameters,
        last_mile: LastMileParameters,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._parameters = parameters
        self._last_mile = last_mile
        self._clock = clock

    async def __call__(self, ctx: HandlerContext, envelope: Envelope, position: ShipmentPosition) -> None:
        tenant_id = envelope.tenantid
        # Locks the shipment row: a position and a state change of one shipment never interleave.
        shipment = await EtaRepository(ctx.conn).shipment(tenant_id, position.tracking_number)
        if shipment is None or not refines(shipment.status):
            status = None if shipment is None else shipment.status.value
            log.info("eta_position_ignored", reason="unknown_shipment" if status is None else "status",
                     status=status)  # fmt: skip
            return
        store = LastMileStore(ctx.conn)
        state = await store.state(tenant_id, position.tracking_number)
        if state is not None and position.recorded_at <= state.last_position_at:
            log.info("eta_position_ignored", reason="not_newer", newest=state.last_position_at.isoformat())
            return
        estimate = estimate_last_mile(position, self._last_mile)
        seen = await store.record_position(tenant_id, position, estimate)
        published = None if state is None else state.expected_at
        if estimate is None or not worth_publishing(published, estimate, self._last_mile):
            return
        predicted_at = self._clock()
        confidence = confidence_of(
            estimate, self._last_mile, handled_at=predicted_at, published_expected_at=published
        )
        version = self._last_mile.version
        event = last_mile_event(
            shipment, estimate, clock=self._parameters.clock, confidence=confidence,
            positions_seen=seen, predicted_at=predicted_at, model_version=version,
        )  # fmt: skip
        emitted = await ctx.emit(event, time=predicted_at)
        await store.save_published(
            tenant_id, position.tracking_number, estimate, confidence=confidence, model_version=version,
            milestone=shipment.status, predicted_at=predicted_at, event_id=emitted.id,
        )  # fmt: skip
        log.info(
            "eta_last_mile_predicted",
            expected_at=estimate.expected_at.isoformat(),
            minutes=round(estimate.minutes, 1),
            remaining_m=estimate.remaining_m,
            confidence=confidence,
        )
