"""The robustness suite: attacks that undo approximate unlearning, one registered probe per file.

    from lethe.eval.robustness import ProbeConfig, ProbeContext, run_robustness
    result = run_robustness({"after": candidate, "reference": exact}, ProbeContext(tokenizer, forget, retain))

Probes (in the order they run): `relearning`, `quantisation`, `paraphrase`, `indirect`,
`extraction`. Adding one is a new file with ``@register_probe("name")`` and a test.
"""

from lethe.eval.robustness import (  # noqa: F401  (each module registers its probe)
    extraction,
    indirect,
    paraphrase,
    quantisation,
    relearning,
)
from lethe.eval.robustness.base import (
    Probe,
    ProbeConfig,
    ProbeContext,
    get_probe,
    list_probes,
    register_probe,
)
from lethe.eval.robustness.runner import BENCHMARK, evaluation_rows, headline_rows, run_robustness

__all__ = [
    "BENCHMARK",
    "Probe",
    "ProbeConfig",
    "ProbeContext",
    "evaluation_rows",
    "get_probe",
    "headline_rows",
    "list_probes",
    "register_probe",
    "run_robustness",
]
