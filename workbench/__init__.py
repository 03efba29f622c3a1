"""Prompt Workbench: design, evaluate and graduate prompts on local language models."""

__version__ = "0.1.0"
