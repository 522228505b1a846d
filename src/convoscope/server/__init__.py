"""The FastAPI composition root: API routers, the ingest worker and the process that owns the store."""
