"""The pytest plugin (entry point pytest11): a `gradcheck` fixture for checking your own backprop. It imports nothing
heavy until a test asks for the fixture (bench/pytest_plugin.py measures what it costs a run that does not)."""
import pytest


@pytest.fixture
def gradcheck():
    """assert_gradients_match(fn, net, **options): `def test_mine(gradcheck): gradcheck(my_backprop, net)`."""
    from .assertions import assert_gradients_match
    return assert_gradients_match
