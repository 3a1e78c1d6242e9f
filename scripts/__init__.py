"""Build and packaging scripts (never shipped to Lambda)."""
