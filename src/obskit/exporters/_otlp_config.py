"""Where and how the OTLP exporter sends each signal: arguments, then the standard variables.

For every setting the order is: the ``OTLPExporter`` argument, then
``OTEL_EXPORTER_OTLP_<SIGNAL>_<NAME>`` (signal: ``LOGS``, ``TRACES``, ``METRICS``), then
``OTEL_EXPORTER_OTLP_<NAME>``, then the default of the OTLP exporter specification:

============  =====================================================================
ENDPOINT      base URL (default ``http://localhost:4318`` for HTTP, ``:4317`` for gRPC);
              HTTP appends ``/v1/logs`` etc., except to a per-signal endpoint, used as is
PROTOCOL      ``http/protobuf`` (default, as the specification says) or ``grpc``
HEADERS       ``key=value,key2=value2`` (values URL-encoded)
TIMEOUT       milliseconds (default 10000), as the specification says; a value under 100
              is read as seconds, the way the OpenTelemetry Python SDK reads it
COMPRESSION   ``gzip`` or ``none`` (default)
CERTIFICATE   CA bundle to trust; CLIENT_KEY / CLIENT_CERTIFICATE for mutual TLS
INSECURE      gRPC only: plaintext for an endpoint without ``http://`` or ``https://``
============  =====================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlparse

__all__ = ["PROTOCOLS", "SIGNALS", "Destination", "resolve"]

Signal = Literal["logs", "traces", "metrics"]
SIGNALS: tuple[Signal, ...] = ("logs", "traces", "metrics")
PROTOCOLS = ("grpc", "http/protobuf")
_DEFAULT_ENDPOINTS = {"grpc": "http://localhost:4317", "http/protobuf": "http://localhost:4318"}


@dataclass(frozen=True, slots=True)
class Destination:
    """Resolved settings for one signal."""

    signal: Signal
    protocol: str
    #: HTTP: the full URL to POST to. gRPC: the ``host:port`` target.
    address: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    compression: str = "none"
    insecure: bool = False
    certificate: str | None = None
    client_key: str | None = None
    client_certificate: str | None = None


def _env(environ: Mapping[str, str], signal: Signal, name: str) -> str | None:
    value = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_{name}")
    if not value:
        value = environ.get(f"OTEL_EXPORTER_OTLP_{name}")
    return value.strip() if value and value.strip() else None


def resolve(
    signal: Signal,
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    compression: str | None = None,
    insecure: bool | None = None,
    certificate: str | None = None,
    client_key: str | None = None,
    client_certificate: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Destination:
    """The :class:`Destination` for ``signal``; a bad value raises ``ValueError`` saying why.

    >>> resolve("logs", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}).address
    'http://collector:4318/v1/logs'
    >>> d = resolve("traces", protocol="grpc", environ={"OTEL_EXPORTER_OTLP_TIMEOUT": "2500"})
    >>> (d.address, d.insecure, d.timeout_s)
    ('localhost:4317', True, 2.5)
    """
    env = os.environ if environ is None else environ
    protocol = (protocol or _env(env, signal, "PROTOCOL") or "http/protobuf").lower()
    if protocol not in PROTOCOLS:
        raise ValueError(f"OTLP protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    own_endpoint = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    base = endpoint or own_endpoint or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    base = base or _DEFAULT_ENDPOINTS[protocol]
    # Credentials in the URL become a header: never sent in the clear, never in repr or warnings.
    base, authorization = split_credentials(base)
    per_signal_url = not endpoint and bool(own_endpoint)
    compression = (compression or _env(env, signal, "COMPRESSION") or "none").lower()
    if compression not in ("gzip", "none"):
        raise ValueError(f"OTLP compression {compression!r} is not 'gzip' or 'none'")
    address, plaintext = base, False
    if protocol == "grpc":
        address, plaintext = _grpc_target(base, insecure, _env(env, signal, "INSECURE"))
    else:
        address = base if per_signal_url else f"{base.rstrip('/')}/v1/{signal}"
        if urlparse(address).scheme not in ("http", "https"):
            raise ValueError(f"OTLP/HTTP endpoint {address!r} must start with http:// or https://")
    all_headers = _headers(headers, _env(env, signal, "HEADERS"))
    if authorization is not None:
        all_headers.setdefault("authorization", authorization)
    return Destination(
        signal=signal,
        protocol=protocol,
        address=address,
        headers=all_headers,
        timeout_s=timeout_s if timeout_s is not None else _timeout(_env(env, signal, "TIMEOUT")),
        compression=compression,
        insecure=plaintext,
        certificate=certificate or _env(env, signal, "CERTIFICATE"),
        client_key=client_key or _env(env, signal, "CLIENT_KEY"),
        client_certificate=client_certificate or _env(env, signal, "CLIENT_CERTIFICATE"),
    )


def split_credentials(url: str) -> tuple[str, str | None]:
    """``url`` without ``user:password@``, and the ``Authorization`` value they make.

    >>> split_credentials("https://ann:s%40cret@collector:4318/base")
    ('https://collector:4318/base', 'Basic YW5uOnNAY3JldA==')
    >>> split_credentials("http://collector:4318")
    ('http://collector:4318', None)
    """
    import base64
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    pair = f"{unquote(user)}:{unquote(password)}".encode()
    clean = urlunsplit(parts._replace(netloc=hostport))
    return clean, "Basic " + base64.b64encode(pair).decode("ascii")


def _headers(given: Mapping[str, str] | None, raw: str | None) -> dict[str, str]:
    from opentelemetry.util.re import parse_env_headers

    out = dict(parse_env_headers(raw, liberal=True)) if raw else {}
    out.update({k.lower(): v for k, v in (given or {}).items()})
    return out


def _timeout(raw: str | None) -> float:
    if raw is None:
        return 10.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"OTEL_EXPORTER_OTLP_TIMEOUT={raw!r} is not a number") from None
    return value if value < 100 else value / 1000.0


def _grpc_target(base: str, insecure: bool | None, insecure_env: str | None) -> tuple[str, bool]:
    parsed = urlparse(base if "://" in base else f"//{base}")
    if not parsed.netloc:
        raise ValueError(f"OTLP/gRPC endpoint {base!r} has no host:port")
    if parsed.scheme in ("http", "https"):
        plaintext = parsed.scheme == "http"
    elif insecure is not None:
        plaintext = insecure
    else:
        plaintext = (insecure_env or "false").lower() == "true"
    return parsed.netloc, plaintext
