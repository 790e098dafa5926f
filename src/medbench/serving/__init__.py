"""`medbench serve`: a saved run behind TIML's REST routes (FastAPI + uvicorn).

Modules: `uploads` (what an upload is, checked before decoding; no TensorFlow), `limits` (the streaming
body-size limit), `batcher` (micro-batching), `service` (the run loaded once: preprocessing, thresholds,
explanations), `app` (`create_app`: the routes) and `arguments` (the command).
"""
