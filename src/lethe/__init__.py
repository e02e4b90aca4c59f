"""lethe: chatbots whose every training example is on record, and that forget on request."""
__version__ = "0.1.0"
