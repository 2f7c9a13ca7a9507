"""Fields Cronofy sent that no schema declares: found by path, each said once per run."""

from __future__ import annotations

import logging
import threading
import typing as t

# A shape: for an object, its known keys, each with the shape of its value (None: any value,
# not looked into); a one-element list: a list whose items have that shape.
Shape: t.TypeAlias = dict[str, "Shape"] | list["Shape"] | None


def leaves(names: t.Iterable[str]) -> dict[str, Shape]:
    """An object's shape whose known keys are all looked into no further."""
    return dict.fromkeys(names)


def unknown_paths(value: object, shape: Shape, path: str = "") -> list[str]:
    """Where ``value`` holds keys ``shape`` does not know, as dotted paths (``[]`` for a
    list's items), sorted and each once."""
    found: set[str] = set()
    _walk(value, shape, path, found)
    return sorted(found)


def _walk(value: object, shape: Shape, path: str, found: set[str]) -> None:
    if isinstance(shape, dict) and isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key not in shape:
                found.add(where)
            else:
                _walk(item, shape[key], where, found)
    elif isinstance(shape, list) and isinstance(value, list):
        for item in value:
            _walk(item, shape[0], f"{path}[]", found)


class Undeclared:
    """Names, once per run (threads share it), the fields of one kind of answer that the
    schema does not declare, so that they can be declared: they are not loaded."""

    def __init__(self, logger: logging.Logger, what: str, shape: Shape) -> None:
        self.logger, self.what, self.shape = logger, what, shape
        self._said: set[str] = set()
        self._lock = threading.Lock()

    def check(self, value: object) -> list[str]:
        """The paths newly named by this answer (logged as one warning)."""
        with self._lock:
            new = [p for p in unknown_paths(value, self.shape) if p not in self._said]
            self._said.update(new)
        if new:
            self.logger.warning(
                "Cronofy sent %s fields the schema does not declare, not loaded: %s. "
                "Please report them so they can be added.",
                self.what,
                ", ".join(new),
            )
        return new
