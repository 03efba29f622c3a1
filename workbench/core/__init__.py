"""The pure core of Prompt Workbench: data model, templates, library, exchange, backends.

Nothing here imports Qt; heavy libraries (torch, transformers, llama_cpp, peft) are
imported lazily inside the functions that need them.
"""
