# SPDX-License-Identifier: Apache-2.0
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from shoaltest import Netns, Shoald  # noqa: E402


@pytest.fixture
def netns():
    ns = Netns()
    yield ns
    ns.close()


@pytest.fixture
def shoald():
    """A fresh single-node daemon for one test."""
    d = Shoald()
    try:
        d.start()
        yield d
    finally:
        d.close()


@pytest.fixture(scope="module")
def shoald_shared():
    """One daemon for a whole test module (faster for read-mostly API tests)."""
    d = Shoald()
    try:
        d.start()
        yield d
    finally:
        d.close()
