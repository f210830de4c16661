"""What an export produces: the file's text, and what had no equivalent and why.

Exports to Prometheus and Alertmanager (:mod:`~obskit.alerts.prometheus`,
:mod:`~obskit.alerts.alertmanager_config`) never drop something silently: what cannot be said
there is listed in :attr:`Export.skipped` with the reason, and ``strict=True`` turns any such
item into a :class:`~obskit.diagnostics.ConfigError` listing them all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obskit.diagnostics import ConfigError

__all__ = ["Export", "yaml_text"]


@dataclass(frozen=True, slots=True)
class Export:
    """An exported file: ``text`` (YAML) and ``skipped`` ((what, why) pairs).

    >>> export = Export("groups: []\\n", [("rule 'spike'", "a detector without a threshold")])
    >>> print(export.report())
    skipped rule 'spike': a detector without a threshold
    """

    text: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def report(self) -> str:
        """One line per skipped item, then the notes (what holds, but differs)."""
        lines = [f"skipped {what}: {why}" for what, why in self.skipped]
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def write(self, path: str | Path) -> Path:
        """Write ``text`` to ``path``; the path."""
        target = Path(path)
        target.write_text(self.text, encoding="utf-8")
        return target

    def check_strict(self, what: str) -> Export:
        """Raise a ConfigError listing every skipped item (strict mode); else ``self``."""
        if self.skipped:
            listed = "\n  - ".join(f"{item}: {why}" for item, why in self.skipped)
            raise ConfigError(
                f"{what}: {len(self.skipped)} item(s) have no equivalent (strict mode):\n  - "
                f"{listed}\nchange them, or export with strict=False to skip them"
            )
        return self

    def __str__(self) -> str:
        return self.text


def yaml_text(data: Any) -> str:
    """``data`` as YAML (JSON, itself valid YAML, without PyYAML)."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml is in the dev extra
        return json.dumps(data, indent=2) + "\n"
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000))
