"""One construct per concern; the stacks in `infra/` compose them and wire the grants."""
