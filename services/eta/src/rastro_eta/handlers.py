"""The consumer of ``rastro.shipments.v1``: remember the shipment, learn from deliveries, predict.

Runs inside the kit's ConsumerRunner, so each event is handled once (inbox), in the same transaction
as its effects, and the ``EtaPredicted`` it emits goes through the outbox. A prediction is published
only when its expected or promise date differs from the one last published for the shipment.

A new sample does not re-predict the lane's other shipments in flight: each is re-predicted at its
own next state change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from rastro_eta.adapters.repository import EtaRepository
from rastro_eta.domain.lanes import lane_chain
from rastro_eta.domain.prediction import (
    ModelParameters,
    eta_event,
    is_predictable,
    predict,
    prediction_changed,
)
from rastro_eta.domain.quantiles import LaneStats, lane_stats
from rastro_eta.domain.shipment import ShipmentFacts, apply_change
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
        if sample is not None and await repo.add_sample(tenant_id, sample):
            log.info(
                "eta_sample_learned",
                transit_days=round(sample.transit_days, 3),
                carrier=sample.attributes.carrier,
            )
        if is_predictable(shipment.status):
            await self._predict(ctx, repo, tenant_id, shipment)

    async def _predict(
        self, ctx: HandlerContext, repo: EtaRepository, tenant_id: str, shipment: ShipmentFacts
    ) -> None:
        candidates: list[LaneStats] = []
        for key in lane_chain(shipment.attributes):
            stats = lane_stats(key, await repo.recent_transit_days(tenant_id, key, self._parameters.window))
            if stats is not None:
                candidates.append(stats)
                if stats.sample_size >= self._parameters.min_samples:
                    break  # coarser lanes matter only while the finer ones are thin
        prediction = predict(shipment, candidates, self._parameters)
        if not prediction_changed(
            await repo.last_prediction(tenant_id, shipment.tracking_number), prediction
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
        )
