"""Signals: one detector per module, registered in `registry.SIGNAL_MODULES`.

A signal reads additive counts of every segment (attempts and "bad" events in each
window) and says how big a change is, how surprising, how many bad events it added, and
whether the rest of a segment looks spared by it. Detection (tools/detection.py) and
root-cause localization (tools/root_cause.py) run every registered signal the same way;
no caller branches on a signal's name.

This package's `__init__` imports nothing, so the incident catalogue can read the names
(`names`) without importing the detectors.
"""
