"""Meltano as users run it: projects, plugin definitions, packaging, config, the demo."""
