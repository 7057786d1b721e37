"""Random networks of blocks ending in every kind of block (dense, residual, layer norm, self-attention, convolution,
recurrent): each one's documents build and hold every gradient, and its gradients agree with verify's hand-written
block reference and central differences. FUZZ_EXAMPLES (as for test_fuzz) sets how many; these are slow."""
from hypothesis import given, settings

import derive
import verify
from verify.strategies import ENDINGS, block_networks

from .test_blocks import build
from .test_documents import assert_documents_hold_every_gradient
from .test_fuzz import EXAMPLES, SETTINGS


@settings(max_examples=max(6, EXAMPLES // 10), **SETTINGS)
@given(block_networks(max_blocks=2, ends=ENDINGS))
def test_random_networks_ending_in_any_block_document_every_gradient_and_verify(plain):
    result = derive.backprop(build(plain))
    assert_documents_hold_every_gradient(result)
    report = verify.check(result, trials=1)
    assert report.rows and report.passed, str(report)
