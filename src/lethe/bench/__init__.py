"""Benchmarks: TOFU (`lethe.bench.tofu`) and the synthetic world (`lethe.bench.synth`).

Each trains its models, runs the unlearning methods, evaluates them with TOFU's protocol and
writes a results table (JSON, Markdown, CSV) and plots. Every stage is cached under the hash
of its whole configuration (`lethe.bench.cache`), and results say what was cached.
"""
