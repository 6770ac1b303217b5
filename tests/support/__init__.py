"""Helpers shared by test modules in several folders (setup.cfg puts tests/ on sys.path)."""
