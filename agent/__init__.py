"""fer-agent runtime: sources, gallery layout, detection, classification, tracking, store, live view, CLI."""

from importlib import metadata


def installed_version() -> str:
    """The installed fer-agent's version ("unknown" when run from a checkout that was never installed)."""
    try:
        return metadata.version("fer-agent")
    except metadata.PackageNotFoundError:
        return "unknown"
