"""lethe: chatbots whose every training example is on record, and that forget on request."""

import logging
import os

# No model or data set is ever fetched at run time: lethe reads local files only. A user who
# really wants the hub sets HF_HUB_OFFLINE=0 explicitly.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# bitsandbytes (imported by peft for LoRA) warns on first import, on a CPU with AVX-512 bf16, that
# the `kernels` package is missing; that package would fetch a kernel from the Hub at run time,
# which lethe never does, so the warning is expected and not the user's to act on.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

__version__ = "0.1.0"
