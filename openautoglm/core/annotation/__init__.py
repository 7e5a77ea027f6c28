"""Annotation: which rows people label next (:mod:`.sampling`)."""
