"""Command-line interface (``breastlesionseg``)."""
