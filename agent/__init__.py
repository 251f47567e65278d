"""fer-agent runtime: sources, gallery layout, detection, classification, tracking, store, live view, CLI."""
