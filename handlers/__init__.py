"""Transport-independent pieces of the embedding service: settings, core, backend, media."""
