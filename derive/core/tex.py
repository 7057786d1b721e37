"""The subset of LaTeX that users may pass (notation, names of registered functions): checked, never raw."""
import re

from ..errors import InvalidArgument

# what a notation may write: letters, digits, sub/superscripts, braces, primes, spaces and these macros
_MACROS = {"\\" + g for g in (
    "alpha beta gamma Gamma delta Delta epsilon varepsilon zeta eta theta Theta vartheta iota kappa lambda Lambda mu nu "
    "xi Xi pi Pi rho varrho sigma Sigma tau upsilon Upsilon phi Phi varphi chi psi Psi omega Omega "
    "mathbf mathrm mathit mathsf mathcal boldsymbol hat tilde bar vec odot circ cdot top intercal operatorname "
    "ast star bullet prime").split()}
_SAFE_TEX = re.compile(r"(?:\\[A-Za-z]+|[A-Za-z0-9_^{}' ,.()+\-])*")


def safe_tex(text, where):
    """text, when it is a LaTeX fragment of the safe subset; an InvalidArgument naming `where` otherwise."""
    if not isinstance(text, str) or not _SAFE_TEX.fullmatch(text) or not _balanced(text) or any(
            m not in _MACROS for m in re.findall(r"\\[A-Za-z]+", text)):
        raise InvalidArgument(f"{where} = {text!r}: only letters, digits, _ ^ {{ }}, primes and the macros "
                              f"{', '.join(sorted(_MACROS))} are written into documents")
    return text


def _balanced(text):
    """Whether every { is closed by a later } (}{ is not)."""
    depth = 0
    for c in text:
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0
