"""Readers (and a writer) of on-disk training datasets; each reader yields `(ViewSample, ViewSample, overlap)`."""
