"""RunPod Serverless worker: job inputs mapped onto the shared request core, run in-process."""
