"""The ensemble: several detectors, each calibrated on its own history, voting by weighted mean."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from obskit.anomaly import _state
from obskit.anomaly._base import AnomalyScore, BaseDetector, detector_from_state
from obskit.anomaly._state import ConfigError
from obskit.anomaly.likelihood import AnomalyLikelihood

__all__ = ["Ensemble"]


class Ensemble(BaseDetector):
    """Combines detectors that see different things into one score, then rations the alerts.

    With ``calibrate`` (the default) every member is wrapped in an
    :class:`~obskit.anomaly.AnomalyLikelihood`, so each speaks in the same unit, "how rare is
    this for me"; the ensemble score is their weighted mean. A point must look rare to several
    members at once to score high (Skyline's consensus, softened into an average), which is
    what keeps the false alarms of any single member down.

    After a flagged point the ensemble stays quiet (score 0) until it has been calm for as long
    as the incident lasted, and at least ``cooldown`` points: one alert per incident, not one per
    point of it (set 0 to score every point). The band comes from the first member that draws
    one; a flag names the member that weighed most (``member``) and gives its ``reason``.

    >>> from obskit.anomaly import EWMA, Ensemble, RangeNovelty
    >>> detector = Ensemble([EWMA(), RangeNovelty()], cooldown=10, threshold=0.4)
    >>> history = [50.0 + (i % 5) for i in range(500)]
    >>> any(result.is_anomaly for result in detector.update_many(history))
    False
    >>> first, second = detector.update(90.0), detector.update(91.0)
    >>> first.is_anomaly, second.is_anomaly, second.score      # the second is the same incident
    (True, False, 0.0)

    Works badly when most members cannot see the kind of anomaly at hand (an average of one
    loud and three silent members stays low: give that member more weight), and an open
    incident hides a second one that starts before the first has calmed down.
    Costs the sum of its members.
    """

    name = "ensemble"
    __slots__ = ("calibrate", "members", "weights")

    def __init__(
        self,
        members: Sequence[BaseDetector],
        weights: Sequence[float] | None = None,
        *,
        calibrate: bool = True,
        cooldown: int = 0,
        warmup: int = 0,
        threshold: float = 0.5,
    ) -> None:
        super().__init__(warmup=warmup, threshold=threshold, cooldown=cooldown, value_range=None)
        if not members or not all(isinstance(member, BaseDetector) for member in members):
            raise ConfigError("members: give a non-empty list of obskit.anomaly detectors")
        if weights is None:
            weights = [1.0] * len(members)
        if len(weights) != len(members) or not all(
            isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0
            for weight in weights
        ):
            raise ConfigError("weights: give one finite weight >= 0 per member")
        if not sum(weights) > 0:
            raise ConfigError("weights: at least one weight must be positive")
        self.calibrate = bool(calibrate)
        self.members: list[BaseDetector] = [
            AnomalyLikelihood(member)
            if calibrate and not isinstance(member, AnomalyLikelihood)
            else member
            for member in members
        ]
        total = math.fsum(weights)
        self.weights = [float(weight) / total for weight in weights]

    def _step(self, value: float, timestamp: float | None) -> AnomalyScore:
        score = 0.0
        band: AnomalyScore | None = None
        results = []
        for member, weight in zip(self.members, self.weights, strict=True):
            result = member._accept(value, timestamp)
            results.append(result)
            score += weight * result.score
            if band is None and result.lower is not None:
                band = result
        if band is None:
            out = AnomalyScore(score, score >= self.threshold, value, timestamp=timestamp)
        else:
            out = AnomalyScore(
                score,
                score >= self.threshold,
                value,
                band.expected,
                band.lower,
                band.upper,
                timestamp,
            )
        if out.is_anomaly:
            self._credit(out, results)
        return out

    def _credit(self, out: AnomalyScore, results: list[AnomalyScore]) -> None:
        """Name the member that weighed most in a flag, and give its reason."""
        index = max(range(len(results)), key=lambda k: self.weights[k] * results[k].score)
        member, result = self.members[index], results[index]
        inner = member.detector if isinstance(member, AnomalyLikelihood) else member
        out.member = result.member if result.member is not None else inner.name
        out.reason = result.reason if result.reason is not None else member._explain(result)

    @classmethod
    def _from_config(cls, config: dict[str, Any]) -> Ensemble:
        settings = dict(config)
        members = settings.get("members")
        if not isinstance(members, list):
            raise _state.StateError("ensemble state: 'members' must be a list of states")
        settings["members"] = [detector_from_state(member) for member in members]
        return cls(**settings)

    def _config(self) -> dict[str, Any]:
        return {
            "members": [member.state() for member in self.members],
            "weights": list(self.weights),
            "calibrate": self.calibrate,
            "cooldown": self.cooldown,
            "warmup": self.warmup,
            "threshold": self.threshold,
        }

    def _data(self) -> dict[str, Any]:
        return {}

    def _load(self, data: dict[str, Any]) -> None:
        pass
