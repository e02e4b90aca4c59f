"""Data: sources, the synthetic world, curation, tokenizer training and chat formatting."""
