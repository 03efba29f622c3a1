"""The PySide6 user interface: thin widgets over workbench.core."""
