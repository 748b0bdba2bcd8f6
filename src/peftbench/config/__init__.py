"""The experiment schema: pydantic models for every section of an experiment file, --set overrides, the
name registry and the tracker names. Knows no method or task (those check their own options above it)."""
