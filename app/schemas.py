"""Shapes every API endpoint shares."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: ``total`` counts every item, not just this page's."""

    items: list[T]
    total: int
    limit: int
    offset: int
