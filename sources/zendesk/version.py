"""The package's release (CHANGELOG.md at the repository root says what each one changed).

Every run stores it in the source state (`package_version`), so a pipeline's state says which
release last wrote it: an upgrade can tell state it must migrate from state it wrote itself.
"""

__version__ = "0.2.0"
