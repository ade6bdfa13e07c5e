"""The lifecycle's Dispatcher over the registry: who an escalation step reaches."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from cloud.dispatch.ranking import WorkerIndex, rank_candidates
from cloud.lifecycle import AlarmView, StepRequest, Target, TargetKind
from cloud.registry.model import DeviceLocation, Point, Registry, Worker
from rules.devices import DeviceInfo


class RegistryDispatcher:
    """Nearest on-duty workers of the alarm's grid, then supervisor, commander, community."""

    def __init__(
        self,
        index: WorkerIndex,
        registry: Registry,
        devices: Mapping[str, DeviceInfo],
        *,
        open_load: Callable[[], Mapping[str, int]] = dict,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.index = index
        self._devices = devices
        self._locations: dict[str, DeviceLocation] = {loc.device: loc for loc in registry.locations}
        self._open_load = open_load
        self._clock = clock

    def targets(self, alarm: AlarmView, step: StepRequest) -> Sequence[Target]:
        now = self._clock()
        device = self._devices.get(alarm.device or "")
        grid = device.grid if device is not None else ""
        match step.target:
            case TargetKind.NEXT_NEAREST:
                loc = self._locations.get(alarm.device or "")
                point = Point(loc.lat, loc.lon) if loc is not None else None
                ranked = rank_candidates(
                    point,
                    grid,
                    now,
                    self.index,
                    limit=max(step.count, 1),
                    open_load=self._open_load(),
                    exclude=step.exclude,
                )
                people: list[Worker] = [c.worker for c in ranked]
            case TargetKind.GRID_SUPERVISOR:
                people = [w for w in [self.index.supervisor_of(grid)] if w is not None]
            case TargetKind.DUTY_COMMANDER:
                people = [w for w in [self.index.duty_commander(now)] if w is not None]
            case TargetKind.COMMUNITY_ALL:
                community = device.community if device is not None else ""
                people = self.index.community_workers(community, now)
        if not people and step.target is not TargetKind.DUTY_COMMANDER:
            # nobody for this step (a gateway alarm, an unregistered grid): the commander
            people = [w for w in [self.index.duty_commander(now)] if w is not None]
        return [Target(w.id, locale=str(w.locale)) for w in people if w.id not in step.exclude]
