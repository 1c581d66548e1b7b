"""Pulumi programs that build a region's OpenStack sites (private and public cloud sides).

The program (`program.py`) is importable apart from the Pulumi entry point (`__main__.py`), so
tests and `hcops infra preview --offline` run it under Pulumi's mock runtime (`mocks.py`), and
`hcops infra up` runs the same program through the Automation API where a `pulumi` CLI exists.
"""
