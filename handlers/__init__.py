"""The embedding service: core/ (validation and dispatch, transport-independent), engine/
(models and their schedulers), media/ (image inputs), api/ (the HTTP surface); settings,
errors, the composition root and the process entry points at the top."""
