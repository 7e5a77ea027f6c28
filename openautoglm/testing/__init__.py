"""Test helpers that ship with the package: a local stand-in for the Zhipu API."""

from openautoglm.testing.fake_zhipu import FakeZhipuServer, Fault

__all__ = ["FakeZhipuServer", "Fault"]
