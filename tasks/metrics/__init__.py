"""One small module per metric: predictions and references in, per-example scores out."""
