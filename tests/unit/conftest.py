"""Unit fixtures: the request core over the fake backend and image loader."""

from __future__ import annotations

import pytest

from handlers.core.dispatch import Core
from tests.fakes import FakeBackend, FakeImages


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def core(make_settings, backend) -> Core:
    return Core(make_settings(), backend, FakeImages())
