"""Known-bad and known-good workflow code for the static determinism check.

Each line the check must report ends with ``# expect: <qualified call>``; every other line
must not be reported (tests/shared/test_workflowcheck.py reads the markers).
"""
