"""Flows shared by the command line and the panels: plan, run, save — written once.

Each module owns one user-level flow (or the lookups and formatting that flows share);
`workbench/cli` and `workbench/ui` are thin callers, so a fix here fixes both.
"""
