"""Models: named Llama presets, atomic HF-layout save/load, LoRA and QLoRA adapters.

Import from the submodules (`lethe.model.presets`, `lethe.model.io`, `lethe.model.lora`);
this package imports nothing heavy so that `import lethe.model` stays cheap.
"""
