"""The archive of finished answers: storing and rendering them, full-text search, and where
requests meet the image archive."""
