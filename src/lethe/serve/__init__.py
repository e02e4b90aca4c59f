"""Serving model versions: the OpenAI-compatible API, the model pool, conversation logging.

Import from the submodules (`lethe.serve.api`, `lethe.serve.models`, `lethe.serve.logging`,
`lethe.serve.server`); this package imports nothing heavy.
"""
