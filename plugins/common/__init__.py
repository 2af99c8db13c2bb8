"""Public helpers shared by the first-party plugins.

Nothing here registers a plugin (no ``@hookimpl``, no entry point): a helper that two plugins
need lives here, never in one of them, so each plugin stands alone (DESIGN.md section 3;
``tests/plugins/test_standalone.py`` checks it). Each module keeps heavy imports (torch,
transformers, resemblyzer) inside the functions that need them.
"""
