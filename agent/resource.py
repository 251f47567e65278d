"""What holds a model, a file or a device: ``close()`` it when done, or use it in a ``with`` block, which closes it
at the block's end whatever happens in it."""

from __future__ import annotations

from typing import TypeVar

R = TypeVar("R", bound="Resource")


class Resource:
    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: R) -> R:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
