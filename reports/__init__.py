"""The post-class report (HTML) and exports (CSV/JSON)."""
