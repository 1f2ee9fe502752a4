"""`nas scale grid|family|show`: EfficientNet compound scaling (issue 4)."""
