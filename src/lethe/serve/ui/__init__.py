"""The web UI (Gradio Blocks) that `lethe serve` mounts at ``/``: chat, forget, compare,
changelog and data tabs over the same engine pool, ledger and worker as the API.

Gradio's analytics are off before Gradio is imported; the default theme uses bundled fonts,
so the page requests nothing outside the server.
"""

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # the page and server call no one

from lethe.serve.ui.app import UIContext, build_ui, mount_ui

__all__ = ["UIContext", "build_ui", "mount_ui"]
