"""The serve configuration's old spelling, read as the new one: configs written before one
schema served ``run`` and ``serve`` (a stream's ``source`` a URL beside ``task``, ``options``
and ``live``; outputs ``{publish: ...}`` rather than ``{type: publish, endpoint: ...}``; a
top-level ``reconnect``) still load. :func:`migrate_serve` and :func:`migrate_stream` return
the data in the new shape and each rename made (``old -> new``), for one warning line."""

from __future__ import annotations

from typing import Any

from streamer.errors import ConfigError

__all__ = ["migrate_serve", "migrate_stream"]

_SOURCE_KEYS = ("options", "live", "tone_map", "deinterlace")  # now under the stream's source:
_MODEL_KEYS = ("task", "weights")  # now under the stream's model: (and model itself, a name)
_OUTPUT_KEYS = {"publish": "endpoint", "url": "url", "hls": "path", "file": "path"}


def migrate_serve(data: Any) -> tuple[Any, list[str]]:
    """A whole serve config: the top-level ``reconnect`` into ``source.reconnect``, then each
    stream (the streams' key paths ``streams[i]``)."""
    if not isinstance(data, dict):
        return data, []
    data, renames = dict(data), list[str]()
    if "reconnect" in data:
        _move(data, "reconnect", "source", "reconnect", "", renames)
    streams = data.get("streams")
    if isinstance(streams, list):
        migrated = [migrate_stream(s, f"streams[{i}]") for i, s in enumerate(streams)]
        data["streams"] = [stream for stream, _ in migrated]
        renames += [rename for _, done in migrated for rename in done]
    return data, renames


def migrate_stream(data: Any, prefix: str) -> tuple[Any, list[str]]:
    """One stream entry (a YAML one, or one added over the HTTP API) in the new shape."""
    if not isinstance(data, dict):
        return data, []
    data, renames = dict(data), list[str]()
    if isinstance(data.get("source"), str):
        data["input"] = data.pop("source")
        renames.append(f"{prefix}.source: URL -> {prefix}.input: URL")
    if isinstance(data.get("model"), str):
        data["model"] = {"model": data["model"]}
        renames.append(f"{prefix}.model: NAME -> {prefix}.model.model: NAME")
    for key in _SOURCE_KEYS:
        if key in data:
            _move(data, key, "source", key, prefix, renames)
    for key in _MODEL_KEYS:
        if key in data:
            _move(data, key, "model", key, prefix, renames)
    outputs = data.get("outputs")
    if isinstance(outputs, list):
        data["outputs"] = [_output(o, f"{prefix}.outputs[{i}]", renames)
                           for i, o in enumerate(outputs)]
    return data, renames


def _output(data: Any, prefix: str, renames: list[str]) -> Any:
    """``{url: X, format: F}`` -> ``{type: url, url: X, format: F}``; ``{hls: X}`` ->
    ``{type: hls, path: X}`` and so on (an output with a ``type`` is left as it is)."""
    if not isinstance(data, dict) or "type" in data:
        return data
    given = [key for key in _OUTPUT_KEYS if key in data]
    if len(given) != 1:
        return data  # neither shape: the tagged union's own error names what is missing
    old = given[0]
    new = {"type": old, **{k: v for k, v in data.items() if k != old},
           _OUTPUT_KEYS[old]: data[old]}
    renames.append(f"{prefix}.{old}: X -> {prefix}: {{type: {old}, {_OUTPUT_KEYS[old]}: X}}")
    return new


def _move(data: dict[str, Any], old: str, section: str, key: str, prefix: str,
          renames: list[str]) -> None:
    """``data[old]`` to ``data[section][key]``; both given is an error naming the two."""
    at = f"{prefix}." if prefix else ""
    inside = data.get(section)
    inside = {} if inside is None else inside
    if not isinstance(inside, dict):
        raise ConfigError(f"config key '{at}{section}' must be a mapping of keys to values")
    if key in inside:
        raise ConfigError(f"{at}{old} (the old spelling) and {at}{section}.{key} are both "
                          f"given; keep {at}{section}.{key}")
    data[section] = {**inside, key: data.pop(old)}
    renames.append(f"{at}{old} -> {at}{section}.{key}")
