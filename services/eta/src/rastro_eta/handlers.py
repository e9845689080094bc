"""The consumer of ``rastro.shipments.v1``: remember the shipment, learn from deliveries, predict.

Runs inside the kit's ConsumerRunner, so each event is handled once (inbox), in the same transaction
as its effects, and the ``EtaPredicted`` it emits goes through the outbox. A prediction is published
only when its expected or promise date differs from the one last published for the shipment. A
delivery is learned once (``lane_samples`` is unique per shipment): its lanes' states are read
``FOR UPDATE`` in one fixed order, updated and written back in the same transaction, and the
prediction that was in force is kept beside the delivery for the KPIs.

A new sample does not re-predict the lane's other shipments in flight: each is re-predicted at its
own next state change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from rastro_eta.adapters.repository import EtaRepository
from rastro_eta.domain.lane_state import learn
from rastro_eta.domain.lanes import lane_chain
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
from rastro_events import Envelope, ShipmentChanged
from rastro_kit.consumer import HandlerContext
from rastro_kit.logs import get_logger

__all__ = ["ShipmentChangedHandler"]

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
