"""Unit fixtures: the request core over the fake backend and image loader; schedulers over a
fake runner and clock."""

from __future__ import annotations

import pytest

from handlers.core.dispatch import Core
from tests.fake_media import FakeMedia
from tests.fakes import FakeBackend
from tests.unit.scheduler_fakes import FakeClock, FakeRunner, schedulers


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def core(make_settings, backend) -> Core:
    return Core(make_settings(), backend, FakeMedia())


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(runner, clock):
    with schedulers(runner, clock) as build:
        yield build
