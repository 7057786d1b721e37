"""The pytest plugin (entry point pytest11): a `gradcheck` fixture for checking your own backprop."""
import pytest

from .assertions import assert_gradients_match


@pytest.fixture
def gradcheck():
    """assert_gradients_match(fn, net, **options): `def test_mine(gradcheck): gradcheck(my_backprop, net)`."""
    return assert_gradients_match
