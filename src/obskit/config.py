"""Settings: one pydantic model, read from ``init()`` arguments, ``OBSKIT_*`` and ``OTEL_*``.

Priority: keyword arguments, then ``OBSKIT_<NAME>`` environment variables, then the standard
OpenTelemetry ones (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES`` for ``service.name``,
``service.version`` and ``deployment.environment``), then defaults. A bad value raises
:class:`ConfigError` naming the setting, where it came from and what is allowed.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from obskit.diagnostics import ConfigError
from obskit.levels import LEVELS, Level, canonical_level

__all__ = [
    "ConfigError",
    "Settings",
    "import_object",
    "load_settings",
    "settings_for_default_setup",
]

CommaList = Annotated[list[Any], NoDecode]


class Settings(BaseSettings):
    """Everything ``obskit.init`` accepts. Each field can also be set as ``OBSKIT_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="OBSKIT_",
        extra="forbid",
        validate_default=True,
        arbitrary_types_allowed=True,
        # inf and NaN pass ``gt=0`` yet break timers, joins and sleeps later
        allow_inf_nan=False,
    )

    #: ``init`` prints what it set up (exporters, chained hooks) on stderr; silent otherwise.
    debug: bool = False

    # -- identity ------------------------------------------------------------------------
    service: str = "unknown_service"
    environment: str = "development"
    release: str | None = None
    #: Tags on every error event and span (``tenant``, ``region``); ``obskit.set_tags`` and
    #: ``context(tags=...)`` add scoped ones (inner wins), each call's ``tags=`` wins over all.
    tags: dict[str, str | int | float | bool] = Field(default_factory=dict)
    #: Where the dashboard is served (``https://ops.example.com/obskit``): alert notifications
    #: link error groups and traces to its pages (``/errors/<fingerprint>``,
    #: ``/traces/<trace id>``). ``None``: no links.
    dashboard_url: str | None = None

    # -- logging -------------------------------------------------------------------------
    level: Level = "info"
    capture_stdlib_logging: bool = False
    processors: list[Callable[..., Any]] = Field(default_factory=list)
    #: Keep this share of the records of a level (``{"debug": 0.1, "info": 0.5}``); error and
    #: critical are never sampled. What is sampled out is counted per level.
    log_sample_rate: dict[str, float] = Field(default_factory=dict)

    # -- instrumentation -----------------------------------------------------------------
    #: A call (``@instrument``, ``request``, ``timer``, a database statement) taking this many
    #: milliseconds or more logs one warning; ``None``: only where a call sets ``slow_ms``.
    slow_ms: float | None = Field(None, ge=0)
    #: Also capture each slow call as an event (one group per call site).
    slow_capture: bool = False
    #: ``@instrument`` opens a root span when no trace is active (jobs, scripts).
    instrument_root: bool = False

    # -- pipeline and exporters ----------------------------------------------------------
    #: Exporter objects, or names from :func:`obskit.exporting.available_exporters`.
    exporters: CommaList = Field(default_factory=lambda: ["console"])
    #: Constructor arguments of named exporters: ``{"jsonl": {"path": "app.jsonl"}}``
    #: (``OBSKIT_EXPORTER_OPTIONS`` takes the same as JSON). Third-party exporters alike.
    #: ``max_queue_size``, ``max_batch_size`` and ``schedule_delay_s`` there set that
    #: exporter's processor alone (``{"sqlite": {"max_batch_size": 4096}}``).
    exporter_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Per exporter. These three are the defaults for every exporter's processor; an exporter
    #: may prefer others (the SQLite store and JSON lines batch bigger and rarer), which a
    #: value set here (or in ``OBSKIT_*``) replaces, and ``exporter_options`` beats both.
    max_queue_size: int = Field(10_000, gt=0)
    max_batch_size: int = Field(512, gt=0)
    schedule_delay_s: float = Field(0.2, gt=0)
    #: Give up on a batch after this many seconds of retryable failures; None: keep it until
    #: the backend takes it (the queue, and the spool if set, bound what is kept).
    retry_max_elapsed_s: float | None = Field(None, ge=0)
    #: A directory where each exporter spools what its backend could not take yet, so an
    #: outage plus a restart loses nothing.
    spool_dir: str | None = None
    shutdown_timeout_s: float = Field(5.0, gt=0)
    #: On SIGTERM and SIGINT, flush (within shutdown_timeout_s) before the application's own
    #: handler runs (or the process ends by the signal, when it has none).
    flush_on_signals: bool = True

    # -- metrics -------------------------------------------------------------------------
    #: How often the periodic reader sends every series to the exporters (default from
    #: OTEL_METRIC_EXPORT_INTERVAL, in milliseconds there).
    metrics_interval_s: float = Field(60.0, gt=0)
    #: Sums and histograms as totals since start, or as changes since the previous collection
    #: (default from OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE).
    metrics_temporality: Literal["cumulative", "delta"] = "cumulative"
    #: Label sets per metric before points go to the ``otel.metric.overflow`` series.
    metrics_cardinality_limit: int = Field(2000, ge=1)
    #: Distinct metric names per process; past it new names record nothing (counted).
    metrics_max_names: int = Field(1000, ge=1)
    #: process.* and cpython.gc.* series, collected at each read (stdlib only).
    runtime_metrics: bool = True
    #: A directory shared by the service's worker processes: each writes its series there,
    #: so one Prometheus scrape of any worker gives the whole service.
    metrics_multiprocess_dir: str | None = None

    # -- sampling ------------------------------------------------------------------------
    sample_rate: float = Field(1.0, ge=0, le=1)
    traces_sample_rate: float = Field(1.0, ge=0, le=1)

    # -- scrubbing -----------------------------------------------------------------------
    scrub: bool = True
    scrub_keys: CommaList = Field(default_factory=list)
    scrub_allow_keys: CommaList = Field(default_factory=list)
    send_default_pii: bool = False
    max_string_length: int = Field(8192, gt=0)

    # -- errors --------------------------------------------------------------------------
    install_hooks: bool = True
    before_send: Callable[..., Any] | None = None
    before_breadcrumb: Callable[..., Any] | None = None
    ignore_errors: CommaList = Field(default_factory=list)
    max_breadcrumbs: int = Field(100, ge=0, le=10_000)
    in_app_include: CommaList = Field(default_factory=list)
    in_app_exclude: CommaList = Field(default_factory=list)
    include_locals: bool = False
    max_events_per_group_per_minute: int | None = Field(100, gt=0)

    @field_validator("ignore_errors", "in_app_include", "in_app_exclude", mode="before")
    @classmethod
    def _split_error_lists(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, type):
            return [value]
        return value

    @field_validator("ignore_errors")
    @classmethod
    def _exception_types(cls, value: list[Any]) -> list[Any]:
        for item in value:
            if isinstance(item, type) and issubclass(item, BaseException):
                continue
            if isinstance(item, str) and all(part.isidentifier() for part in item.split(".")):
                continue
            raise ValueError(
                f"{item!r} is not an exception class or a dotted class name "
                "(use e.g. [KeyError, 'myapp.errors.Benign'])"
            )
        return value

    @field_validator("in_app_include", "in_app_exclude")
    @classmethod
    def _module_names(cls, value: list[Any]) -> list[Any]:
        for item in value:
            if isinstance(item, str) and item.startswith("<") and item.endswith(">"):
                continue  # generated code's pseudo-file, e.g. "<template>" (see errors/frames)
            if not isinstance(item, str) or not all(p.isidentifier() for p in item.split(".")):
                raise ValueError(
                    f"{item!r} is not a module or package name (e.g. 'myapp.core') "
                    "nor a generated-code file name (e.g. '<template>')"
                )
        return value

    @field_validator("before_send", "before_breadcrumb", mode="before")
    @classmethod
    def _import_hook(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            return import_object(value.strip())
        return value or None

    @field_validator("exporters", "scrub_keys", "scrub_allow_keys", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_sample_rate")
    @classmethod
    def _sample_rates(cls, value: dict[str, float]) -> dict[str, float]:
        for level, rate in value.items():
            if level not in LEVELS:
                raise ValueError(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
            if level in ("error", "critical"):
                raise ValueError(f"{level} records are never sampled: remove {level!r}")
            if not 0 <= rate <= 1:
                raise ValueError(f"a sample rate is between 0 and 1, got {level}={rate!r}")
        return value

    @field_validator("dashboard_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or " " in value:
            raise ValueError(
                f"must be the dashboard's base URL, e.g. 'https://ops.example.com/obskit' "
                f"(got {value!r})"
            )
        return value.rstrip("/")

    @field_validator("level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return canonical_level(value) or value

    @field_validator("exporter_options")
    @classmethod
    def _options_for_named_exporters(
        cls, value: dict[str, dict[str, Any]], info: ValidationInfo
    ) -> dict[str, dict[str, Any]]:
        named = {item for item in info.data.get("exporters", ()) if isinstance(item, str)}
        for name in value:
            if name not in named:
                raise ValueError(
                    f"options for exporter {name!r}, which is not among the named exporters "
                    f"({', '.join(sorted(named)) or 'none'}); add {name!r} to exporters=[...]"
                )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _OtelEnvironment(settings_cls))


class _OtelEnvironment(PydanticBaseSettingsSource):
    """The standard OpenTelemetry resource variables, lowest priority after ``OBSKIT_*``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        attributes = parse_resource_attributes(os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""))
        found: dict[str, Any] = {}
        service = os.environ.get("OTEL_SERVICE_NAME") or attributes.get("service.name")
        if service:
            found["service"] = service
        environment = attributes.get("deployment.environment.name") or attributes.get(
            "deployment.environment"
        )
        if environment:
            found["environment"] = environment
        if attributes.get("service.version"):
            found["release"] = attributes["service.version"]
        interval_ms = os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", "").strip()
        if interval_ms:
            try:
                found["metrics_interval_s"] = float(interval_ms) / 1000.0
            except ValueError:
                found["metrics_interval_s"] = interval_ms  # validation names the problem
        preference = os.environ.get("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "")
        preference = preference.strip().lower()
        if preference:
            found["metrics_temporality"] = "delta" if preference == "lowmemory" else preference
        return found


def parse_resource_attributes(raw: str) -> dict[str, str]:
    """Parse ``OTEL_RESOURCE_ATTRIBUTES`` (``k=v,k2=v2``, values percent-encoded)."""
    from urllib.parse import unquote

    out: dict[str, str] = {}
    for pair in raw.split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            out[key.strip()] = unquote(value.strip())
    return out


def import_object(path: str) -> Any:
    """The object named ``package.module:attribute`` (or ``package.module.attribute``)."""
    import importlib

    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot import {path!r} ({exc}); use 'package.module:function'") from None
    return target


def load_settings(**kwargs: Any) -> Settings:
    """Build :class:`Settings`, turning pydantic's errors into one clear :class:`ConfigError`."""
    try:
        return Settings(**kwargs)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, kwargs)) from None


def settings_for_default_setup() -> Settings:
    """Settings for the setup started by the first signal before any ``init``. Never raises.

    A bad ``OBSKIT_*`` variable is an error at ``init``; here, with no ``init`` to raise
    from, it is reported once on stderr and that setting keeps its default, so logs still flow.
    """
    try:
        return Settings()
    except ValidationError as exc:
        from obskit import diagnostics

        diagnostics.report("config.environment", f"{_explain(exc, {})}; using their defaults")
        bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        defaults = {
            name: Settings.model_fields[name].get_default(call_default_factory=True)
            for name in bad
            if name in Settings.model_fields
        }
        try:
            return Settings(**defaults)
        except ValidationError:
            return Settings.model_construct()


def _explain(exc: ValidationError, kwargs: dict[str, Any]) -> str:
    fields = list(Settings.model_fields)
    lines = [f"obskit.init: {exc.error_count()} invalid setting(s)"]
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            lines.append(f"  - unknown setting {name!r}{hint} (known: {', '.join(fields)})")
            continue
        source = f"argument {name}=" if name in kwargs else f"env OBSKIT_{name.upper()}"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  - {name} (from {source}) = {error.get('input')!r}: {message}")
    return "\n".join(lines)
